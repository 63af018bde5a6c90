"""annotator.agreement_records: agreement stored on approval, and recomputed by a command."""

import json
import math

import pytest
from django.core.management import call_command

from annotator import agreement, workflow
from annotator.models import Agreement, Image, Status
from tests.factories import SQUARE, content, make_image

pytestmark = pytest.mark.django_db

BIG = [[10, 10], [40, 10], [40, 40], [10, 40]]
SHIFTED = [[14, 10], [44, 10], [44, 40], [14, 40]]
TRI = [[60, 5], [90, 5], [75, 40]]


def submitted(alice, name: str, *lesions, is_normal: bool = False, **image_kw) -> Image:
    image = make_image(name, annotator=alice, **image_kw)
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(*lesions, is_normal=is_normal), expected_version=layer.version
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    return image


def _finite_json(value) -> None:
    """The row's JSON holds no NaN nor infinity (json.dumps would write them as bare words)."""
    json.dumps(value, allow_nan=False)


def test_an_unchanged_approval_stores_perfect_agreement(alice, bob, image_in):
    image = image_in(Status.APPROVED)
    row = Agreement.objects.get(image=image)
    assert (row.first_reader, row.second_reader) == (alice, bob)
    assert row.first_layer_id == row.second_layer_id == image.consensus_id
    assert (row.dice, row.iou, row.hausdorff, row.hd95, row.assd) == (1.0, 1.0, 0.0, 0.0, 0.0)
    assert (row.round, row.unit, row.lesions_matched, row.lesions_added, row.lesions_missed) == (1, "px", 1, 0, 0)
    assert row.review.decision == "approved" and row.review.dice == 1.0


def test_an_edited_approval_stores_what_the_metric_module_gives_in_mm(alice, bob):
    image = submitted(alice, "SPAC_001.png", ("benign", BIG), ("malignant", TRI))
    Image.objects.filter(pk=image.pk).update(pixel_spacing_x_mm=0.1, pixel_spacing_y_mm=0.25, pixel_spacing_mm=0.158)
    review = workflow.edit_and_approve(
        image_id=image.pk, user=bob, content=content(("malignant", SHIFTED), ("benign", [[60, 45], [80, 45], [70, 60]]))
    )
    image.refresh_from_db()
    row = Agreement.objects.get(review=review)
    expected = agreement.compare_layers(
        review.layer.geometry_lesions(),
        image.consensus.geometry_lesions(),
        image.width,
        image.height,
        agreement.Spacing(0.1, 0.25),
    )
    assert row.second_layer == image.consensus and row.first_layer == review.layer
    assert row.unit == "mm" and (row.spacing_x_mm, row.spacing_y_mm) == (0.1, 0.25)
    assert math.isclose(row.dice, expected.whole.dice) and math.isclose(row.hd95, expected.whole.hd95)
    assert math.isclose(row.assd, expected.whole.assd)
    assert row.per_label == {k: v.as_dict() for k, v in expected.per_label.items()}
    # the square matched its shifted copy with a benign -> malignant flip; the triangle was missed
    # and the reviewer's small triangle below it added
    assert (row.lesions_matched, row.lesions_missed, row.lesions_added, row.label_flips) == (1, 1, 1, 1)
    assert row.matches[0]["first_label"] == "benign" and row.matches[0]["second_label"] == "malignant"
    assert row.confusion["benign"]["malignant"] == 1
    # Review.dice (whole mask, 4 decimals) agrees with the stored figure
    assert review.dice == round(row.dice, 4)


def test_one_empty_side_stores_zero_dice_and_no_distances(alice, bob):
    image = submitted(alice, "NORM_001.png", is_normal=True)
    review = workflow.edit_and_approve(image_id=image.pk, user=bob, content=content(("benign", SQUARE)))
    row = Agreement.objects.get(review=review)
    assert (row.dice, row.iou, row.hausdorff, row.hd95, row.assd) == (0.0, 0.0, None, None, None)
    assert (row.first_label, row.second_label, row.normal_lesion_disagreement) == ("Normal", "Benign", True)
    assert (row.lesions_matched, row.lesions_added, row.lesions_missed) == (0, 1, 0)
    for value in (row.per_label, row.matches, row.confusion):
        _finite_json(value)


def test_both_normal_is_perfect_agreement(alice, bob):
    image = submitted(alice, "NORM_002.png", is_normal=True)
    review = workflow.approve(image_id=image.pk, user=bob)
    row = Agreement.objects.get(review=review)
    assert (row.dice, row.hd95, row.first_label, row.normal_lesion_disagreement) == (1.0, 0.0, "Normal", False)


def test_the_round_counts_send_backs_since_the_last_reopening(alice, bob, carol, image_in):
    image = image_in(Status.RETURNED)
    layer = workflow.start(image_id=image.pk, user=alice)
    workflow.submit(layer_id=layer.pk, user=alice)
    first = workflow.approve(image_id=image.pk, user=bob)
    assert Agreement.objects.get(review=first).round == 2
    workflow.reopen(image_id=image.pk, user=carol, reason="check the margin")
    layer = workflow.start(image_id=image.pk, user=alice)
    workflow.submit(layer_id=layer.pk, user=alice)
    second = workflow.approve(image_id=image.pk, user=bob)
    assert Agreement.objects.get(review=second).round == 1
    assert Agreement.objects.filter(image=image).count() == 2  # the earlier approval's row is kept


def test_a_send_back_stores_no_agreement(returned_image):
    assert not Agreement.objects.filter(image=returned_image).exists()


def test_recompute_agreement_restores_every_row_and_is_idempotent(alice, bob, image_in):
    image_in(Status.APPROVED, "AAAA_000.png")
    edited = submitted(alice, "BBBB_001.png", ("benign", BIG))
    workflow.edit_and_approve(image_id=edited.pk, user=bob, content=content(("benign", SHIFTED)))
    before = {
        r.review_id: (r.dice, r.hd95, r.round, r.first_layer_id, r.second_layer_id) for r in Agreement.objects.all()
    }
    assert len(before) == 2
    # a metric "change": one row is lost, another wrong
    Agreement.objects.filter(image__name="AAAA_000.png").delete()
    Agreement.objects.filter(image=edited).update(dice=0.5, hd95=99.0, round=7)
    call_command("recompute_agreement", stdout=open("/dev/null", "w"))
    after = {
        r.review_id: (r.dice, r.hd95, r.round, r.first_layer_id, r.second_layer_id) for r in Agreement.objects.all()
    }
    assert after == before
    ids = set(Agreement.objects.values_list("pk", flat=True))
    call_command("recompute_agreement", stdout=open("/dev/null", "w"))
    assert set(Agreement.objects.values_list("pk", flat=True)) == ids
    assert {
        r.review_id: (r.dice, r.hd95, r.round, r.first_layer_id, r.second_layer_id) for r in Agreement.objects.all()
    } == before


def test_an_image_imported_as_approved_has_no_reviewed_pair(alice, carol):
    image = make_image("IMPO_001.png")
    workflow.create_imported(
        image=image,
        content=content(("benign", SQUARE)),
        as_status="approved",
        author=alice,
        annotator=None,
        actor=carol,
    )
    image.refresh_from_db()
    assert image.status == Status.APPROVED and not Agreement.objects.filter(image=image).exists()
