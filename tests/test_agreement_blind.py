"""Reader agreement of blind double readings: stored when the adjudicator decides (each reading
against the consensus, and reader against reader), recomputed, exported and shown."""

import csv
import io
import math
import zipfile

import pytest
from django.core.management import call_command
from django.test import Client

from annotator import agreement, exporting, workflow
from annotator.models import Agreement, Image, Review

pytestmark = pytest.mark.django_db

READERS, SUBMISSION = Agreement.Kind.READERS, Agreement.Kind.SUBMISSION_CONSENSUS


def readings(image: Image):
    first = image.layers.get(reader=1)
    second = image.layers.get(reader=2)
    return first, second


def expected(image: Image, a, b) -> agreement.ImageAgreement:
    return agreement.compare_layers(a.geometry_lesions(), b.geometry_lesions(), image.width, image.height, None)


def test_an_adjudication_stores_each_reading_against_the_consensus_and_the_readers_pair(
    double_image_in, alice, erin, bob
):
    image = double_image_in("adjudication")
    first, second = readings(image)
    workflow.adjudicate(image_id=image.pk, user=bob, layer_id=second.pk)
    rows = {(r.kind, r.first_reader_id): r for r in Agreement.objects.filter(image=image)}
    assert set(rows) == {(SUBMISSION, alice.pk), (SUBMISSION, erin.pk), (READERS, alice.pk)}
    pair = rows[(READERS, alice.pk)]
    assert (pair.first_layer_id, pair.second_layer_id, pair.second_reader_id) == (first.pk, second.pk, erin.pk)
    assert math.isclose(pair.dice, expected(image, first, second).whole.dice, abs_tol=1e-12)
    assert pair.review.layer_id == first.pk and pair.review.decision == Review.Decision.ADJUDICATED
    # The chosen reading agrees fully with the consensus; the other one as the module says.
    assert rows[(SUBMISSION, erin.pk)].dice == 1.0 and rows[(SUBMISSION, erin.pk)].second_reader_id == bob.pk
    assert math.isclose(rows[(SUBMISSION, alice.pk)].dice, pair.dice, abs_tol=1e-12)
    # Both readings are of round 1 and decided by one review each.
    assert {r.round for r in rows.values()} == {1}


def test_an_adjudicators_edit_is_the_consensus_the_readings_are_measured_against(double_image_in, bob):
    image = double_image_in("adjudication")
    first, second = readings(image)
    workflow.adjudicate_edit(
        image_id=image.pk, user=bob, content=workflow.LayerContent(lesions=first.geometry_lesions()), start_from="union"
    )
    image.refresh_from_db()
    for row in Agreement.objects.filter(image=image, kind=SUBMISSION):
        assert row.second_layer_id == image.consensus_id
        reading = first if row.first_layer_id == first.pk else second
        assert math.isclose(row.dice, expected(image, reading, image.consensus).whole.dice, abs_tol=1e-12)


def test_recompute_restores_the_blind_reading_rows(double_image_in, bob):
    image = double_image_in("adjudication")
    first, second = readings(image)
    workflow.adjudicate(image_id=image.pk, user=bob, layer_id=first.pk)
    before = {(r.kind, r.first_layer_id): (r.dice, r.hd95, r.second_layer_id) for r in Agreement.objects.all()}
    Agreement.objects.update(dice=0.0, hd95=-1.0)
    call_command("recompute_agreement", verbosity=0)
    after = {(r.kind, r.first_layer_id): (r.dice, r.hd95, r.second_layer_id) for r in Agreement.objects.all()}
    assert after == before and len(after) == 3


def test_the_agreement_export_has_the_readers_pair(double_image_in, bob):
    image = double_image_in("adjudication")
    first, second = readings(image)
    workflow.adjudicate(image_id=image.pk, user=bob, layer_id=first.pk)
    buf = io.BytesIO()
    exporting.write_zip(buf, exporting.ExportOptions(formats=["agreement"]))
    text = zipfile.ZipFile(io.BytesIO(buf.getvalue())).read("agreement.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert sorted(r["Pair"] for r in rows) == ["readers", "submission_consensus", "submission_consensus"]
    pair = next(r for r in rows if r["Pair"] == "readers")
    assert pair["Decision"] == "adjudicated" and pair["FirstReader"] != pair["SecondReader"]
    assert math.isclose(float(pair["Dice"]), expected(image, first, second).whole.dice, abs_tol=1e-9)


def test_the_agreement_page_shows_reader_pairs_apart(double_image_in, bob, carol):
    image = double_image_in("adjudication")
    workflow.adjudicate(image_id=image.pk, user=bob, layer_id=readings(image)[0].pk)
    client = Client()
    client.force_login(carol)
    response = client.get("/agreement/")
    report = response.context["report"]
    assert [g.key for g in report["readers"]] == ["alice ↔ erin"]
    # The reviewed pairs are the two readings against the consensus; the readers pair is not one.
    assert report["all"].n == 2
    assert 'id="readers"' in response.content.decode()
