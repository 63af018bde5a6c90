"""The review page's desk in real Chromium: decision shortcuts, the decision confirmed before the
next image opens, and the previous revision side by side (issue 9, part 2). Decisions are checked
in the database.
"""

from __future__ import annotations

import pytest

from annotator import geometry, workflow
from annotator.models import Image, MaskLayer, Review
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import at_queue, open_review
from tests.browser.test_move_all import drawn_image
from tests.factories import PASSWORD, alice, bob

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SQUARE = [[300.0, 200.0], [420.0, 200.0], [420.0, 300.0], [300.0, 300.0]]


def test_shift_a_approves_and_the_decision_shows_before_the_next_image_opens(login):
    annotator, reviewer = alice(), bob()
    first = drawn_image("DESK_000.png", annotator, [geometry.Lesion(label="benign", points=SQUARE)], submit=True)
    second = drawn_image("DESK_001.png", annotator, [geometry.Lesion(label="benign", points=SQUARE)], submit=True)
    rp = login("bob", PASSWORD)
    open_review(rp, first)
    rp.keyboard.press("Shift+A")
    rp.wait_for_selector("#decision-done", state="visible")
    assert rp.text_content("#decision-done").startswith("Approved: DESK_000.png.")
    assert rp.url.endswith(f"/images/{first.pk}/review/")  # still on the decided image meanwhile
    wait_until(lambda: Image.objects.get(pk=first.pk).status == "approved", what="the approval")
    review = Review.objects.get(image=first)
    assert review.decision == "approved" and review.reviewer == reviewer
    rp.wait_for_url(lambda url: url.endswith(f"/images/{second.pk}/review/"), wait_until="commit")
    # Settle on the next image (no request left in flight when the test's database is reset).
    rp.wait_for_function("() => window.busPage && window.busPage.state === 'ready' && window.busViewer.imageLoaded")
    assert Image.objects.get(pk=second.pk).status == "submitted"
    assert rp.js_errors == []


def test_shift_s_opens_the_comment_and_ctrl_enter_sends_back(login):
    image = drawn_image("DESK_002.png", alice(), [geometry.Lesion(label="malignant", points=SQUARE)], submit=True)
    reviewer = bob()
    rp = login("bob", PASSWORD)
    open_review(rp, image)
    rp.keyboard.press("Shift+S")
    assert rp.evaluate("document.activeElement.id") == "comment"
    assert Review.objects.count() == 0  # nothing decided by the key alone
    rp.keyboard.press("Control+Enter")  # no comment yet: refused on the page
    assert rp.is_visible("#decision-error") and Review.objects.count() == 0
    rp.keyboard.type("The lower margin is missing.")
    rp.keyboard.press("Control+Enter")
    rp.wait_for_selector("#decision-done", state="visible")
    assert rp.text_content("#decision-done").startswith("Sent back: DESK_002.png (alice).")
    review = wait_until(lambda: Review.objects.filter(image=image).first(), what="the send-back")
    assert review.decision == "returned" and review.comment == "The lower margin is missing."
    assert review.reviewer == reviewer
    assert Image.objects.get(pk=image.pk).status == "returned"
    rp.wait_for_url(at_queue)
    assert rp.js_errors == []


def test_the_previous_revision_side_by_side_follows_the_zoom_and_pan(login, artifacts):
    annotator = alice()
    image = drawn_image("DESK_003.png", annotator, [geometry.Lesion(label="benign", points=SQUARE)], submit=True)
    # Sent back and resubmitted with a different outline: revision 2 under review, 1 before it.
    workflow.send_back(image_id=image.pk, user=bob(), comment="Larger, please")
    layer = workflow.start(image_id=image.pk, user=annotator)
    bigger = [[280.0, 180.0], [440.0, 180.0], [440.0, 320.0], [280.0, 320.0]]
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=annotator,
        expected_version=layer.version,
        content=workflow.LayerContent(lesions=[geometry.Lesion(label="benign", points=bigger)]),
    )
    workflow.submit(layer_id=layer.pk, user=annotator)
    rp = login("bob", PASSWORD)
    open_review(rp, image)
    assert not rp.is_visible("#compare-pane")
    rp.check("#side-by-side")
    rp.wait_for_selector("#compare-pane", state="visible")
    assert "Revision 1" in rp.text_content("#compare-label")
    compare = "document.getElementById('stage-compare')"
    rp.wait_for_function(f"() => {compare}.querySelector('canvas')")

    def views():
        return rp.evaluate(
            """() => {
                const v = window.busViewer;
                const c = document.getElementById('stage-compare').getBoundingClientRect();
                const m = document.getElementById('stage').getBoundingClientRect();
                return {
                    main: [v.scale, v.stage.x(), v.stage.y()],
                    widths: [Math.round(m.width), Math.round(c.width)],
                    heights: [Math.round(m.height), Math.round(c.height)],
                };
            }"""
        )

    # Both panes half the width; zooming the main one zooms the other alike.
    v = views()
    assert abs(v["widths"][0] - v["widths"][1]) <= 3 and v["heights"][0] == v["heights"][1]
    rp.keyboard.press("+")
    rp.keyboard.press("+")
    other = rp.evaluate(
        """() => {
            const konva = window.Konva.stages.find((s) => s.container().id === 'stage-compare');
            return [konva.scaleX(), konva.x(), konva.y()];
        }"""
    )
    assert other == views()["main"]
    rp.screenshot(path=str(artifacts / "side-by-side.png"))
    submitted = MaskLayer.objects.get(image=image, status="submitted")
    assert submitted.revision == 2  # what is under review is the new outline, on the left
    assert rp.evaluate("window.busViewer.lesions[0].points") == bigger
    assert rp.js_errors == []
