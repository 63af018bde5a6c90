"""The smart tool in real Chromium: a box (or a click) becomes a proposed lesion that is stored,
editable and undoable like a drawn one, on the annotation page and in the review page's edit mode.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from annotator import geometry
from annotator.models import Image, MaskLayer
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import (
    HEIGHT,
    WIDTH,
    click_image,
    draft_of,
    drag_image,
    near,
    open_annotate,
    open_review,
    outward,
    scan,
    submitted_scan,
)
from tests.factories import PASSWORD, alice, bob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def loose_box(lesion: geometry.Lesion, margin: int = 15) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y, w, h = geometry.bbox(lesion)
    return (max(0, x - margin), max(0, y - margin)), (
        min(WIDTH - 1, x + w - 1 + margin),
        min(HEIGHT - 1, y + h - 1 + margin),
    )


def dice(points, lesion: geometry.Lesion) -> float:
    proposal = geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, points), WIDTH, HEIGHT)
    return geometry.dice(proposal, geometry.lesion_mask(lesion, WIDTH, HEIGHT))


def test_a_box_around_a_lesion_becomes_a_stored_editable_undoable_lesion(login, artifacts):
    image, [truth] = scan("SMRT_000.png", alice(), lesions=("benign",), seed=21)
    page = login("alice", PASSWORD)
    open_annotate(page, image)

    page.keyboard.press("s")
    assert page.get_attribute("#tool-smart", "aria-pressed") == "true"
    # Hold the request to see the page wait for it: the box stays, a busy note shows.
    held = []
    page.route("**/api/images/*/propose/", lambda route: held.append(route))
    start, end = loose_box(truth)
    drag_image(page, start, end)
    page.wait_for_selector("#viewer-message[data-kind=busy]")
    assert "busy" in page.get_attribute("#stage", "class")
    assert near(page.evaluate("window.busViewer.pending.box"), [*start, *end])
    wait_until(lambda: held, what="the proposal request")
    assert near(held[0].request.post_data_json["box"], [*start, *end])
    held[0].continue_()
    layer = draft_of(image)  # the proposal is the first edit: it starts the draft

    [stored] = wait_until(lambda: list(MaskLayer.objects.get(pk=layer.pk).lesions.all()), what="the proposal")
    assert stored.label == "benign"  # the current label
    assert geometry.find_crossing(stored.points) is None and 8 <= len(stored.points) <= 150
    assert dice(stored.points, truth) >= 0.8
    # Selected in the edit tool, listed, saved, and the busy note gone.
    assert page.evaluate("[window.busViewer.tool, window.busViewer.selected]") == ["edit", 0]
    assert page.get_attribute("#tool-edit", "aria-pressed") == "true"
    assert page.locator("#lesion-list li[data-label=benign]").count() == 1
    assert "busy" not in page.get_attribute("#stage", "class")
    assert page.get_attribute("#viewer-message", "data-kind") == "info"
    page.wait_for_function("() => window.busPage.state === 'saved'")
    page.screenshot(path=str(artifacts / "smart-contour.png"))

    # Its points move like those of any drawn lesion.
    moved = outward(stored.points, 0, 6)
    drag_image(page, stored.points[0], moved)
    wait_until(lambda: near(MaskLayer.objects.get(pk=layer.pk).lesions.get().points[0], moved), what="the moved point")

    # Undo takes back the move, then the proposal, and each undo is saved.
    page.keyboard.press("Control+z")
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).lesions.get().points == stored.points, what="the undone move")
    page.keyboard.press("Control+z")
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).lesions.count() == 0, what="the undone proposal")
    assert page.locator("#lesion-list li").count() == 0
    assert page.js_errors == []


def test_a_click_inside_a_lesion_proposes_it_and_a_refused_box_says_why(login):
    image, [truth] = scan("SMRT_001.png", alice(), lesions=("malignant",), seed=12)
    page = login("alice", PASSWORD)
    open_annotate(page, image)

    # A box too small for the server: a 400, told in the status bar, nothing stored.
    page.click("#tool-smart")
    drag_image(page, (100, 100), (105, 105))
    page.wait_for_selector("#viewer-message[data-kind=error]")
    assert "at least" in page.text_content("#viewer-message")
    assert page.evaluate("window.busViewer.lesions.length") == 0
    assert not MaskLayer.objects.filter(image=image, lesions__isnull=False).exists()
    assert page.evaluate("window.busViewer.pending") is None

    # A click in the middle of the lesion, labelled malignant first.
    page.keyboard.press("m")
    cx, cy = geometry.lesion_mask(truth, WIDTH, HEIGHT).nonzero()[::-1]
    click_image(page, float(cx.mean()), float(cy.mean()))
    layer = draft_of(image)
    [stored] = wait_until(lambda: list(MaskLayer.objects.get(pk=layer.pk).lesions.all()), what="the proposal")
    assert stored.label == "malignant"
    assert dice(stored.points, truth) >= 0.7
    assert page.js_errors == []


def test_a_reviewer_adds_a_proposed_lesion_while_editing_then_approves(login):
    annotator, reviewer = alice(), bob()
    image = submitted_scan("SMRT_002.png", annotator, seed=9)
    rp = login("bob", PASSWORD)
    open_review(rp, image)
    assert not rp.is_visible("#tool-smart")  # read-only until the reviewer edits
    rp.click("#edit-approve")
    rp.click("#tool-smart")
    rp.keyboard.press("b")
    drag_image(rp, (560, 420), (700, 520))
    rp.wait_for_function("() => window.busViewer.lesions.length === 2")
    assert rp.evaluate("window.busViewer.lesions[1].label") == "benign"
    rp.click("#confirm-edit-approve")
    wait_until(lambda: Image.objects.get(pk=image.pk).status == "approved", what="the approval")
    consensus = Image.objects.get(pk=image.pk).consensus
    assert consensus.author == reviewer and consensus.lesions.count() == 2
    assert rp.js_errors == []


def _edge_point(ring, factor: float) -> list[float]:
    """The middle of the ring's longest edge (far from its vertex handles), moved from the centre
    by ``factor`` (< 1: inside the outline, > 1: outside it)."""
    n = len(ring)
    k = max(range(n), key=lambda i: math.dist(ring[i], ring[(i + 1) % n]))
    mx, my = (ring[k][0] + ring[(k + 1) % n][0]) / 2, (ring[k][1] + ring[(k + 1) % n][1]) / 2
    cx, cy = sum(p[0] for p in ring) / n, sum(p[1] for p in ring) / n
    return [cx + factor * (mx - cx), cy + factor * (my - cy)]


def _inside(ring, point) -> bool:
    return cv2.pointPolygonTest(np.float32(ring), (float(point[0]), float(point[1])), False) > 0


def test_shift_and_alt_clicks_correct_the_proposal_and_undo_takes_them_back(login):
    image, [truth] = scan("SMRT_003.png", alice(), lesions=("benign",), seed=21)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    page.keyboard.press("s")
    start, end = loose_box(truth)
    drag_image(page, start, end)
    layer = draft_of(image)
    [proposed] = wait_until(lambda: list(MaskLayer.objects.get(pk=layer.pk).lesions.all()), what="the proposal")
    assert page.evaluate("window.busViewer.tool") == "edit"
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/propose/") else None)

    # Alt+click just inside the outline: it must leave that place out; the rest stays.
    cut = _edge_point(proposed.points, 0.8)
    assert _inside(proposed.points, cut)
    page.keyboard.down("Alt")
    click_image(page, *cut)
    page.keyboard.up("Alt")
    first = wait_until(
        lambda: (les := MaskLayer.objects.get(pk=layer.pk).lesions.get()).points != proposed.points and les,
        what="the corrected outline",
    )
    assert near(sent[-1]["box"], [*start, *end]) and near(sent[-1]["outside"], [cut], tol=1.5)
    assert sent[-1]["inside"] == []
    assert not _inside(first.points, cut)
    assert first.label == "benign" and dice(first.points, truth) >= 0.6
    assert page.evaluate("window.busViewer.lesions.length") == 1  # replaced, not added

    # Shift+click outside it: the outline must reach there; both points go with the request.
    grow = _edge_point(first.points, 1.25)
    assert not _inside(first.points, grow)
    page.keyboard.down("Shift")
    click_image(page, *grow)
    page.keyboard.up("Shift")
    second = wait_until(
        lambda: (les := MaskLayer.objects.get(pk=layer.pk).lesions.get()).points != first.points and les,
        what="the second correction",
    )
    assert near(sent[-1]["inside"], [grow], tol=1.5) and near(sent[-1]["outside"], [cut], tol=1.5)
    assert _inside(second.points, grow)
    page.wait_for_selector("#viewer-message[data-kind=info]")
    assert "correction" in page.text_content("#viewer-message")

    # Each correction is one undo step, saved like any edit.
    page.keyboard.press("Control+z")
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).lesions.get().points == first.points, what="undo 1")
    page.keyboard.press("Control+z")
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).lesions.get().points == proposed.points, what="undo 2")
    # The outline is back to a state the reader did not get from the last answer: a Shift+click no
    # longer asks the server (the session ended), so nothing changes.
    before = len(sent)
    page.keyboard.down("Shift")
    click_image(page, *grow)
    page.keyboard.up("Shift")
    page.wait_for_timeout(300)
    assert len(sent) == before
    assert page.js_errors == []
