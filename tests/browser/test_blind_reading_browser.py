"""Blind double reading in real Chromium: a curator assigns one image to two readers, each draws it
differently without seeing the other's drawing, and a reviewer adjudicates: sees both readings
overlaid with their agreement, picks one, edits it and approves. Every step is checked in the database."""

from __future__ import annotations

import pytest

from annotator import agreement, workflow
from annotator.models import AuditEvent, Image, MaskLayer, Review
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import (
    POLYGON,
    at_queue,
    click_image,
    drag_image,
    near,
    open_annotate,
    open_review,
    outward,
    points,
    scan,
)
from tests.factories import PASSWORD, alice, bob, carol, erin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHIFTED = [(x + 40, y + 10) for x, y in POLYGON]  # erin's outline of the same lesion, drawn off by 40, 10 px


def draw_and_submit(page, image, outline, label_key: str) -> MaskLayer:
    open_annotate(page, image)
    page.keyboard.press("p")
    page.keyboard.press(label_key)  # the label of the next lesion
    for x, y in [*outline, outline[0]]:
        click_image(page, x, y)
    page.wait_for_function("() => window.busPage.state === 'saved'")
    page.click("#submit")
    return wait_until(
        lambda: MaskLayer.objects.filter(image=image, author__username=page.reader, status="submitted").first(),
        what=f"{page.reader}'s submitted reading",
    )


def test_two_readers_draw_blind_and_the_adjudicator_edits_one_reading_into_the_consensus(login, artifacts):
    first, second, adjudicator, curator = alice(), erin(), bob(), carol()
    image, _ = scan("BLND_000.png", None, seed=13)

    # The curator assigns the image to two readers from the Dataset page.
    cp = login("carol", PASSWORD)
    cp.goto("/dataset/")
    cp.check(f"#images tr[data-image='{image.name}'] input[type=checkbox]")
    cp.select_option("#assign-form select[name=annotator]", "alice")
    cp.select_option("#second-annotator", "erin")
    cp.click("#assign-form button[type=submit]")
    cp.wait_for_load_state()
    assert "blind double reading" in cp.text_content("body")
    image.refresh_from_db()
    assert (image.annotator, image.second_annotator, image.status) == (first, second, "new")
    assert "alice + erin" in cp.text_content(f"#images tr[data-image='{image.name}']")

    # erin reads first: a benign outline off by (40, 10) px.
    ep = login("erin", PASSWORD)
    ep.reader = "erin"
    erins = draw_and_submit(ep, image, SHIFTED, "b")
    assert erins.reader == 2 and Image.objects.get(pk=image.pk).status == "double_reading"
    assert near(erins.lesions.get().points, points(*SHIFTED))

    # alice opens the same image: nothing of erin's drawing is on her page or in its data.
    ap = login("alice", PASSWORD)
    ap.reader = "alice"
    open_annotate(ap, image)
    assert ap.evaluate("window.busViewer.lesions.length") == 0
    assert ap.evaluate("window.busViewer.overlay") is None
    assert ap.locator("#lesion-list li").count() == 0
    assert ap.evaluate("window.busPage.image.readings.length") == 0
    alices = draw_and_submit(ap, image, POLYGON, "m")
    assert alices.reader == 1
    wait_until(lambda: Image.objects.get(pk=image.pk).status == "adjudication", what="adjudication")
    # Both readings are in: still only her own on her page.
    open_annotate(ap, image)
    assert ap.evaluate("window.busViewer.lesions.length") == 1
    assert ap.evaluate("window.busViewer.overlay") is None
    assert "waiting for the adjudicator" in ap.text_content("body")

    # bob adjudicates: both readings overlaid, their agreement shown as the metric module gives it.
    rp = login("bob", PASSWORD)
    open_review(rp, image)
    assert rp.is_visible("#adjudication") and not rp.is_visible("#decision")
    assert rp.evaluate("window.busViewer.lesions.length") == 1
    assert rp.evaluate("window.busViewer.overlay.length") == 1 and rp.evaluate("window.busViewer.overlayVisible")
    assert "alice (reading 1)" in rp.text_content("#reader-solid")
    assert "erin (reading 2)" in rp.text_content("#reader-dashed")
    expected = agreement.compare_layers(
        alices.geometry_lesions(), erins.geometry_lesions(), image.width, image.height
    ).as_dict()
    assert rp.text_content("#agreement-whole td[data-key=dice]") == f"{expected['whole']['dice']:.3f}"
    assert rp.text_content("#agreement-whole td[data-key=hd95]") == f"{expected['whole']['hd95']:.3f} px"
    [match] = expected["lesions"]["matches"]
    row = rp.locator("#agreement-lesions tbody tr")
    assert row.count() == 1
    assert f"{match['dice']:.3f}" in row.text_content() and "(flip)" in row.text_content()
    assert "1 label flip" in rp.text_content("#agreement-summary")
    rp.screenshot(path=str(artifacts / "adjudicate.png"))

    # Swap shows erin's solid; he edits her reading: relabels it malignant and moves one vertex.
    rp.click("#swap-readers")
    assert "erin" in rp.text_content("#reader-solid")
    rp.click("#adj-edit-2")
    assert rp.is_visible("#adj-confirm") and rp.is_visible("#tool-edit")
    rp.click("#lesion-list li >> nth=0")
    rp.keyboard.press("m")
    ring = rp.evaluate("window.busViewer.lesions[0].points")
    corrected = outward(ring, 2, 6)
    drag_image(rp, ring[2], corrected)
    rp.fill("#adj-comment", "Erin's margin, malignant.")
    rp.click("#adj-confirm")
    wait_until(lambda: Image.objects.get(pk=image.pk).status == "approved", what="the adjudicated consensus")

    image.refresh_from_db()
    consensus = image.consensus
    assert (consensus.author, consensus.source, consensus.based_on_id) == (
        adjudicator,
        MaskLayer.Source.REVIEWER_EDIT,
        erins.pk,
    )
    [lesion] = consensus.lesions.all()
    assert lesion.label == "malignant" and near(lesion.points[2], corrected)
    assert set(MaskLayer.objects.filter(pk__in=[alices.pk, erins.pk]).values_list("status", flat=True)) == {
        "superseded"
    }
    reviews = {r.layer_id: r for r in Review.objects.filter(image=image)}
    assert set(reviews) == {alices.pk, erins.pk}
    assert {r.decision for r in reviews.values()} == {"adjudicated"}
    assert all(r.reviewer == adjudicator and r.comment == "Erin's margin, malignant." for r in reviews.values())
    # The review's Dice is the metric module's whole-mask Dice (checked against medpy in test_agreement).
    whole = agreement.compare_layers(
        erins.geometry_lesions(), consensus.geometry_lesions(), image.width, image.height
    ).whole
    assert reviews[erins.pk].dice == round(whole.dice, 4)
    event = AuditEvent.objects.filter(image=image).order_by("-id").first()
    assert (event.action, event.actor, event.detail["start_from"]) == ("adjudicate_edit", adjudicator, erins.pk)
    rp.wait_for_url(at_queue)
    assert rp.js_errors == [] and ap.js_errors == [] and ep.js_errors == [] and cp.js_errors == []
    assert curator.username == "carol"


def test_the_adjudicator_starts_from_the_intersection_or_sends_a_reading_back(login):
    """Set up through the workflow (the drawing is the first test's): the intersection offered by the
    page is what adjudication.combine gives, and is stored as drawn; a send-back from the page
    returns the ticked reading only."""
    from annotator import adjudication
    from tests.factories import content

    first, second, adjudicator, curator = alice(), erin(), bob(), carol()
    images = []
    for k in range(2):
        image, _ = scan(f"BLND_00{k}.png", None, seed=17 + k)
        workflow.assign(image_ids=[image.pk], annotator=first, second_annotator=second, user=curator)
        for reader, outline in ((first, POLYGON), (second, SHIFTED)):
            layer = workflow.start_reading(image_id=image.pk, user=reader)
            layer = workflow.save_draft(
                layer_id=layer.pk,
                user=reader,
                content=content(("benign", [list(map(float, p)) for p in outline])),
                expected_version=layer.version,
            )
            workflow.submit_reading(layer_id=layer.pk, user=reader)
        images.append(Image.objects.get(pk=image.pk))
    intersect, send_back = images

    rp = login("bob", PASSWORD)
    open_review(rp, intersect)
    rp.click("#adj-intersection")
    rp.wait_for_function("() => !document.getElementById('adj-confirm').hidden")
    readings = [layer.geometry_lesions() for layer in intersect.layers.order_by("reader")]
    expected = adjudication.combine(*readings, intersect.width, intersect.height, "intersection").lesions
    assert rp.evaluate("window.busViewer.lesions.map((l) => l.points)") == [les.points for les in expected]
    rp.click("#adj-confirm")
    wait_until(lambda: Image.objects.get(pk=intersect.pk).status == "approved", what="the intersection approved")
    consensus = Image.objects.get(pk=intersect.pk).consensus
    assert consensus.author == adjudicator and consensus.based_on_id is None
    assert [les.points for les in consensus.lesions.all()] == [les.points for les in expected]
    event = AuditEvent.objects.filter(image=intersect).order_by("-id").first()
    assert (event.action, event.detail["start_from"]) == ("adjudicate_edit", "intersection")

    rp.wait_for_url(lambda url: f"/images/{send_back.pk}/review/" in url)  # the next in the queue
    rp.wait_for_function("() => window.busPage && window.busPage.state === 'ready' && window.busViewer.imageLoaded")
    rp.click("#adj-return")
    assert "Tick the reading" in rp.text_content("#adj-error")
    rp.check("#adj-return-2")
    rp.click("#adj-return")
    assert "comment" in rp.text_content("#adj-error")
    rp.fill("#adj-comment", "erin: the lesion is further left")
    rp.click("#adj-return")
    wait_until(lambda: Image.objects.get(pk=send_back.pk).status == "double_reading", what="the send-back")
    statuses = dict(send_back.layers.values_list("author__username", "status"))
    assert statuses == {"alice": "submitted", "erin": "returned"}
    review = Review.objects.get(image=send_back)
    assert (review.decision, review.annotator, review.comment) == (
        "returned",
        second,
        "erin: the lesion is further left",
    )
    assert rp.js_errors == []
