"""The "Move all" tool in real Chromium: a layer that sits off its lesion is shifted into place.

Issue 7, defect 10: an imported mask that had to be resized sits tens of pixels off the lesion
and arrives for review; the reviewer moves the whole layer (outer rings and holes) and approves
the edit. The coordinates here are whole and half pixels, exact in binary floating point, so the
stored rings must equal the submitted ones plus the offset exactly.
"""

from __future__ import annotations

import pytest

from annotator import geometry, workflow
from annotator.models import Image, MaskLayer
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import HEIGHT, WIDTH, draft_of, open_annotate, open_review, to_page
from tests.factories import PASSWORD, alice, bob, make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RING = [[300.0, 200.0], [420.0, 200.0], [420.0, 300.0], [300.0, 300.0]]
HOLE = [[340.0, 230.0], [380.0, 230.0], [380.0, 270.0], [340.0, 270.0]]
TRIANGLE = [[500.5, 350.0], [560.0, 352.5], [530.0, 400.0]]
CORNER = [[800.0, 550.0], [840.0, 550.0], [840.0, 590.0], [800.0, 590.0]]


def shifted(ring: list[list[float]], dx: float, dy: float) -> list[list[float]]:
    return [[x + dx, y + dy] for x, y in ring]


def stored(layer: MaskLayer) -> list[tuple[str, list, list]]:
    return [(les.label, les.points, les.holes) for les in layer.lesions.order_by("index")]


def drawn_image(name: str, annotator, lesions: list[geometry.Lesion], *, submit: bool) -> Image:
    image = make_image(name, width=WIDTH, height=HEIGHT, annotator=annotator)
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=annotator,
        expected_version=layer.version,
        content=workflow.LayerContent(lesions=lesions),
    )
    if submit:
        workflow.submit(layer_id=layer.pk, user=annotator)
    return image


def offset(page) -> list[float] | None:
    return page.evaluate("window.busViewer.moveOffset()")


def test_reviewer_moves_a_submitted_layer_into_place_and_approves_the_moved_layer(login):
    annotator, reviewer = alice(), bob()
    image = drawn_image(
        "SHIF_000.png",
        annotator,
        [
            geometry.Lesion(label="malignant", points=RING, holes=[HOLE]),
            geometry.Lesion(label="benign", points=TRIANGLE),
        ],
        submit=True,
    )
    submitted = MaskLayer.objects.get(image=image, status="submitted")

    rp = login("bob", PASSWORD)
    open_review(rp, image)
    rp.keyboard.press("?")
    assert "Move all" in rp.text_content("#help") and "Shift" in rp.text_content("#help")
    rp.keyboard.press("Escape")
    rp.keyboard.press("g")  # read-only: the tool does not switch, nothing can move
    rp.keyboard.press("Shift+ArrowRight")
    assert rp.get_attribute("#tool-move", "aria-pressed") == "false"
    assert offset(rp) == [0, 0]

    rp.click("#edit-approve")
    rp.keyboard.press("1")  # actual pixels: a screen pixel is an image pixel, so the drag is exact
    rp.keyboard.press("g")
    assert rp.get_attribute("#tool-move", "aria-pressed") == "true"
    start = to_page(rp, 360, 210)
    end = to_page(rp, 400, 240)
    rp.mouse.move(*start)
    rp.mouse.down()
    rp.mouse.move(*end, steps=8)
    rp.mouse.up()
    assert offset(rp) == [40, 30]
    assert "Moved +40, +30 px" in rp.text_content("#hint")

    # Fine adjustment: a burst of nudges, which one undo takes back whole.
    for key in ["Shift+ArrowRight", "Shift+ArrowRight", "Shift+ArrowRight", "Control+Shift+ArrowDown"]:
        rp.keyboard.press(key)
    assert offset(rp) == [43, 40]
    rp.keyboard.press("Control+z")
    assert offset(rp) == [40, 30]
    rp.keyboard.press("Control+Shift+z")
    assert offset(rp) == [43, 40]
    assert "Moved +43, +40 px" in rp.text_content("#hint")

    rp.click("#confirm-edit-approve")
    wait_until(lambda: Image.objects.get(pk=image.pk).status == "approved", what="the approval")
    consensus = Image.objects.get(pk=image.pk).consensus
    assert consensus.source == MaskLayer.Source.REVIEWER_EDIT and consensus.author == reviewer
    assert consensus.based_on_id == submitted.pk
    assert stored(consensus) == [
        ("malignant", shifted(RING, 43, 40), [shifted(HOLE, 43, 40)]),
        ("benign", shifted(TRIANGLE, 43, 40), []),
    ]
    assert stored(submitted) == [("malignant", RING, [HOLE]), ("benign", TRIANGLE, [])]  # kept as submitted
    assert rp.js_errors == []


def test_annotator_moves_a_draft_which_stops_at_the_image_border(login):
    image = drawn_image("SHIF_001.png", alice(), [geometry.Lesion(label="benign", points=CORNER)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)

    # 30 px asked each way, 15 px possible: the square stops with its edge on the last pixel.
    page.keyboard.press("g")
    for _ in range(3):
        page.keyboard.press("Control+Shift+ArrowRight")
        page.keyboard.press("Control+Shift+ArrowDown")
    assert "border" in page.text_content("#viewer-message")
    at_corner = shifted(CORNER, 15, 15)
    assert at_corner[2] == [WIDTH - 1, HEIGHT - 1]
    wait_until(lambda: stored(layer) == [("benign", at_corner, [])], what="the nudged square to be saved")

    # A drag past the top-left corner stops the square at pixel 0, its shape unchanged.
    page.mouse.move(*to_page(page, 830, 580))
    page.mouse.down()
    page.mouse.move(*to_page(page, 5, 5), steps=8)
    page.mouse.up()
    at_origin = shifted(CORNER, -800, -550)
    wait_until(lambda: stored(layer) == [("benign", at_origin, [])], what="the dragged square to be saved")

    # The drag is one undo step.
    page.keyboard.press("Control+z")
    wait_until(lambda: stored(layer) == [("benign", at_corner, [])], what="the undo to be saved")
    assert page.js_errors == []
