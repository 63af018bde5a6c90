"""The drawing and review pages in real Chromium: what the reader does, and what gets stored.

Every step that changes the drawing is checked in the database (layers, lesions, points,
reviews, remarks, statuses), not only on the page.
"""

from __future__ import annotations

import math
from urllib.parse import urlparse

import pytest

from annotator import demo, geometry, workflow
from annotator.models import Image, ImageData, MaskLayer, Remark, Review
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, alice, bob, content, make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 856, 606
POLYGON = [(300, 200), (420, 190), (460, 300), (350, 360), (280, 300)]


# --- helpers ----------------------------------------------------------------------------------


def scan(name: str, annotator, lesions=("malignant",), seed: int = 7) -> tuple[Image, list[geometry.Lesion]]:
    """An 856x606 image with ultrasound-like pixels (the demo generator) and its true outlines."""
    image = make_image(name, width=WIDTH, height=HEIGHT, annotator=annotator)
    png, outlines = demo.generate(seed, list(lesions))
    ImageData.objects.filter(image=image).update(png=png)
    return image, outlines


def submitted_scan(name: str, annotator, seed: int = 7) -> Image:
    image, outlines = scan(name, annotator, seed=seed)
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=annotator,
        expected_version=layer.version,
        content=content(*[(les.label, les.points) for les in outlines]),
    )
    workflow.submit(layer_id=layer.pk, user=annotator)
    return image


def to_page(page, x: float, y: float) -> tuple[float, float]:
    c = page.evaluate("([x, y]) => window.busViewer.imageToPage(x, y)", [x, y])
    return c["x"], c["y"]


def click_image(page, x: float, y: float, **kw) -> None:
    page.mouse.click(*to_page(page, x, y), **kw)


def drag_image(page, start, end, steps: int = 6) -> None:
    page.mouse.move(*to_page(page, *start))
    page.mouse.down()
    page.mouse.move(*to_page(page, *end), steps=steps)
    page.mouse.up()


def open_annotate(page, image: Image) -> None:
    page.goto(f"/images/{image.pk}/annotate/")
    page.wait_for_function("() => window.busPage && window.busPage.ready && window.busViewer.imageLoaded")


def open_review(page, image: Image) -> None:
    page.goto(f"/images/{image.pk}/review/")
    page.wait_for_function("() => window.busPage && window.busPage.state === 'ready' && window.busViewer.imageLoaded")


def draft_of(image: Image) -> MaskLayer:
    """The image's draft, once the page has started it (on the reader's first edit)."""
    return wait_until(lambda: MaskLayer.objects.filter(image=image, status="draft").first(), what="the draft")


def stored(layer: MaskLayer) -> list[list]:
    """[[label, points], ...] of a layer as the database holds it now."""
    return [[les.label, les.points] for les in layer.lesions.order_by("index")]


def points(*pts) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in pts]


def near(a, b, tol: float = 0.51) -> bool:
    """Same contours within ``tol`` px: the mouse lands on fractional screen pixels."""
    if len(a) != len(b):
        return False
    if a and isinstance(a[0], (int, float)):
        return all(abs(u - v) <= tol for u, v in zip(a, b, strict=True))
    return all(near(u, v, tol) for u, v in zip(a, b, strict=True))


def outward(ring, k: int, distance: float) -> list[float]:
    """Vertex k moved ``distance`` px away from the ring's centre (a move that cannot cross)."""
    cx = sum(p[0] for p in ring) / len(ring)
    cy = sum(p[1] for p in ring) / len(ring)
    x, y = ring[k]
    d = math.hypot(x - cx, y - cy)
    return [round(x + (x - cx) / d * distance, 1), round(y + (y - cy) / d * distance, 1)]


def at_queue(url: str) -> bool:
    return urlparse(url).path == "/review/"


# --- tests ------------------------------------------------------------------------------------


def test_annotator_draws_labels_edits_undoes_and_submits(login, artifacts):
    annotator = alice()
    image, _ = scan("ANNA_000.png", annotator, seed=11)
    page = login("alice", PASSWORD)
    open_annotate(page, image)

    # A polygon labelled malignant with `m` beforehand, closed by clicking its first point.
    page.keyboard.press("p")
    page.keyboard.press("m")
    for x, y in [*POLYGON, POLYGON[0]]:
        click_image(page, x, y)
    layer = draft_of(image)  # the first edit started the draft
    assert layer.author == annotator and layer.revision == 1
    wait_until(lambda: [les[0] for les in stored(layer)] == ["malignant"], what="the polygon to be stored")
    assert near(stored(layer)[0][1], points(*POLYGON))
    assert page.locator("#lesion-list li").count() == 1
    assert page.get_attribute("#lesion-list li", "data-label") == "malignant"

    # A freehand trace that overshoots its start: stored simplified, closed and not crossing.
    page.keyboard.press("f")
    page.keyboard.press("b")
    cx, cy, r = 620, 420, 50
    page.mouse.move(*to_page(page, cx + r, cy))
    page.mouse.down()
    for k in range(1, 111):
        a = 2 * math.pi * k / 100
        page.mouse.move(*to_page(page, cx + r * math.cos(a), cy + r * math.sin(a)))
    page.mouse.up()
    wait_until(lambda: layer.lesions.count() == 2, what="the freehand lesion")
    freehand = layer.lesions.get(index=1)
    assert freehand.label == "benign"
    assert 8 <= len(freehand.points) <= 200
    assert geometry.find_crossing(freehand.points) is None
    area = geometry.pixel_area(freehand.as_geometry(), layer.image.width, layer.image.height)
    assert abs(area - math.pi * r * r) < 0.1 * math.pi * r * r
    assert page.locator("#lesion-list li[data-label=benign]").count() == 1

    # Edit: drag the first vertex of the polygon.
    page.keyboard.press("e")
    page.click("#lesion-list li >> nth=0")
    drag_image(page, POLYGON[0], (285, 185))
    moved = points((285, 185), *POLYGON[1:])
    wait_until(lambda: near(stored(layer)[0][1], moved), what="the dragged vertex")

    # Undo puts it back (and saves that); redo moves it again.
    page.keyboard.press("Control+z")
    wait_until(lambda: near(stored(layer)[0][1], points(*POLYGON)), what="undo to be stored")
    page.keyboard.press("Control+Shift+z")
    wait_until(lambda: near(stored(layer)[0][1], moved), what="redo to be stored")

    # A click on an edge inserts a vertex; shift-click deletes it again.
    mid = ((POLYGON[1][0] + POLYGON[2][0]) / 2, (POLYGON[1][1] + POLYGON[2][1]) / 2)
    click_image(page, *mid)
    wait_until(lambda: len(stored(layer)[0][1]) == 6, what="the inserted vertex")
    page.keyboard.down("Shift")
    click_image(page, *mid)
    page.keyboard.up("Shift")
    wait_until(lambda: near(stored(layer)[0][1], moved), what="the vertex deletion")

    # What was saved is what a reload shows.
    page.wait_for_function("() => window.busPage.state === 'saved'")
    page.reload()
    page.wait_for_function("() => window.busPage && window.busPage.ready && window.busViewer.imageLoaded")
    assert page.locator("#lesion-list li").count() == 2
    assert near(page.evaluate("window.busViewer.lesions[0].points"), moved)
    assert page.text_content("#save-state") == "saved"

    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    page.screenshot(path=str(artifacts / "annotate.png"))

    page.click("#submit")
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).status == "submitted", what="the submission")
    image.refresh_from_db()
    assert image.status == "submitted"
    assert [les.label for les in MaskLayer.objects.get(pk=layer.pk).lesions.all()] == ["malignant", "benign"]
    page.wait_for_selector("#page-info:not([hidden])")
    assert page.js_errors == []


def test_normal_flag_and_unsaved_work_survive_a_dropped_connection(login):
    image, _ = scan("NORM_000.png", alice(), lesions=(), seed=3)
    page = login("alice", PASSWORD)
    open_annotate(page, image)

    page.keyboard.press("n")
    layer = draft_of(image)
    wait_until(lambda: MaskLayer.objects.get(pk=layer.pk).is_normal, what="normal to be stored")
    assert page.is_checked("#normal")
    click_image(page, 100, 100)  # drawing is refused while the image is marked normal
    assert page.evaluate("window.busViewer.lesions.length") == 0
    assert "normal" in page.text_content("#viewer-message")
    page.click("#normal")
    wait_until(lambda: not MaskLayer.objects.get(pk=layer.pk).is_normal, what="normal to be cleared")

    # The connection drops: the page says so and keeps the drawing in this browser.
    page.route("**/api/layers/**", lambda route: route.abort())
    triangle = [(100, 100), (200, 100), (150, 180)]
    click_image(page, *triangle[0])
    click_image(page, *triangle[1])
    page.mouse.dblclick(*to_page(page, *triangle[2]))  # a double-click closes the polygon
    page.wait_for_function("() => window.busPage.state === 'offline'")
    assert page.text_content("#save-state") == "offline"
    assert layer.lesions.count() == 0
    assert page.evaluate(f"Object.keys(localStorage).some(k => k.includes(':{layer.pk}:'))")

    # Reloading offers the kept work back; restoring it saves it.
    page.on("dialog", lambda dialog: dialog.accept())  # "leave with unsaved changes?"
    page.reload()
    page.wait_for_function("() => window.busPage && window.busPage.ready")
    page.wait_for_selector("#restore:not([hidden])")
    page.unroute("**/api/layers/**")
    page.click("#restore-apply")
    wait_until(lambda: layer.lesions.count() == 1, what="the restored triangle")
    assert stored(layer)[0][0] == "benign" and near(stored(layer)[0][1], points(*triangle))
    page.wait_for_function("() => window.busPage.state === 'saved'")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('busreview:')).length") == 0

    page.click("#lesion-list li >> nth=0")
    page.keyboard.press("Delete")
    wait_until(lambda: layer.lesions.count() == 0, what="the deletion")
    assert page.locator("#lesion-list li").count() == 0
    assert page.js_errors == []


def test_a_stale_save_shows_the_conflict_and_loads_the_server_version(login):
    annotator = alice()
    image, _ = scan("CONF_000.png", annotator, lesions=(), seed=4)
    workflow.start(image_id=image.pk, user=annotator)  # an earlier visit started the draft
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)
    # Another tab saves first: the page's version is now stale.
    workflow.save_draft(
        layer_id=layer.pk,
        user=annotator,
        expected_version=layer.version,
        content=content(("malignant", [[500, 300], [560, 300], [530, 350]]), note="from the other tab"),
    )
    for x, y in [(100, 100), (200, 100), (150, 180)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.busPage.state === 'conflict'")
    assert page.text_content("#save-state") == "conflict"
    assert page.is_visible("#conflict")
    assert stored(layer) == [["malignant", points((500, 300), (560, 300), (530, 350))]]  # nothing overwritten

    page.click("#conflict-reload")
    assert page.text_content("#save-state") == "saved"
    assert page.get_attribute("#lesion-list li", "data-label") == "malignant"
    assert page.input_value("#note") == "from the other tab"
    assert page.js_errors == []


def test_reviewer_sends_back_with_a_pinned_remark_then_edits_and_approves(login, artifacts):
    annotator, reviewer = alice(), bob()
    image = submitted_scan("REVI_000.png", annotator, seed=5)
    submitted = MaskLayer.objects.get(image=image, status="submitted")

    rp = login("bob", PASSWORD)
    open_review(rp, image)
    assert rp.locator("#lesion-list li").count() == 1

    rp.click("#send-back")  # no comment yet: refused on the page, nothing stored
    assert rp.is_visible("#decision-error")
    assert Review.objects.count() == 0

    rp.click("#pin-mode")
    click_image(rp, 200, 150)
    rp.fill("#remarks li >> nth=0 >> textarea", "The margin is unclear here")
    rp.fill("#comment", "Please redraw the upper margin.")
    rp.screenshot(path=str(artifacts / "review.png"))
    rp.click("#send-back")
    review = wait_until(lambda: Review.objects.filter(image=image, decision="returned").first(), what="the send-back")
    assert review.reviewer == reviewer and review.layer_id == submitted.pk
    assert review.comment == "Please redraw the upper margin."
    remark = Remark.objects.get(review=review)
    assert (round(remark.x), round(remark.y), remark.text) == (200, 150, "The margin is unclear here")
    image.refresh_from_db()
    assert image.status == "returned"
    rp.wait_for_url(at_queue)  # the queue is empty now

    # The annotator sees the comment and the pin, fixes the contour and resubmits.
    ap = login("alice", PASSWORD)
    open_annotate(ap, image)
    assert "Please redraw the upper margin." in ap.text_content("#comments")
    assert "The margin is unclear here" in ap.text_content("#comments")
    assert ap.evaluate("window.busViewer.pins.length") == 1
    ring = ap.evaluate("window.busViewer.lesions[0].points")  # the returned drawing, not yet a draft
    fixed = outward(ring, 0, 8)
    ap.keyboard.press("e")
    ap.click("#lesion-list li >> nth=0")
    drag_image(ap, ring[0], fixed)
    draft = draft_of(image)
    assert draft.revision == 2 and draft.lesions.count() == 1
    wait_until(lambda: near(draft.lesions.get().points[0], fixed), what="the fix")
    ap.click("#submit")
    wait_until(lambda: MaskLayer.objects.get(pk=draft.pk).status == "submitted", what="the resubmission")

    # The reviewer corrects the label and a point, then approves the edit.
    open_review(rp, image)
    assert rp.is_enabled("#show-previous")
    rp.check("#show-previous")
    rp.click("#edit-approve")
    assert rp.is_visible("#confirm-edit-approve") and rp.is_visible("#tool-edit")
    rp.click("#lesion-list li >> nth=0")
    rp.keyboard.press("b")
    ring = rp.evaluate("window.busViewer.lesions[0].points")
    corrected = outward(ring, 5, 6)
    drag_image(rp, ring[5], corrected)
    rp.fill("#comment", "Benign on second look.")
    rp.click("#confirm-edit-approve")
    wait_until(lambda: Image.objects.get(pk=image.pk).status == "approved", what="the approval")
    image.refresh_from_db()
    consensus = image.consensus
    assert consensus.source == MaskLayer.Source.REVIEWER_EDIT and consensus.author == reviewer
    assert consensus.based_on_id == draft.pk
    [lesion] = consensus.lesions.all()
    assert lesion.label == "benign"
    assert near(lesion.points[5], corrected)
    final = Review.objects.get(image=image, decision="edited_approved")
    assert final.comment == "Benign on second look." and final.layer_id == draft.pk
    rp.wait_for_url(at_queue)
    assert rp.js_errors == [] and ap.js_errors == []
