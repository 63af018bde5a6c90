"""The reader-agreement page: who sees which pairs, the SVG plots, filters, constant queries; and
the per-lesion figures on the review page."""

import datetime
import math
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotator import workflow
from annotator.models import Agreement, Status
from tests import factories
from tests.factories import content, make_image, make_user

pytestmark = pytest.mark.django_db

SQUARE = [[10, 10], [40, 10], [40, 40], [10, 40]]
SHIFTED = [[14, 10], [44, 10], [44, 40], [14, 40]]
TRI = [[60, 5], [90, 5], [75, 40]]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def edited(annotator, reviewer, name: str, first=(("benign", SQUARE),), second=(("malignant", SHIFTED),)):
    image = make_image(name, annotator=annotator)
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=annotator, content=content(*first), expected_version=layer.version
    )
    workflow.submit(layer_id=layer.pk, user=annotator)
    workflow.edit_and_approve(image_id=image.pk, user=reviewer, content=content(*second))
    return image


def bars(svg: str) -> list[int]:
    return [int(c) for c in re.findall(r'<rect class="bar" data-count="(\d+)"', svg)]


def plot(html: str, section: str) -> str:
    """The first SVG inside the element with id ``section``."""
    start = html.index(f'id="{section}"')
    return html[html.index("<svg", start) : html.index("</svg>", start) + 6]


@pytest.fixture
def pairs(alice, bob, erin, dave):
    """Three reviewed pairs: alice's images approved unchanged and edited by bob, erin's edited by dave."""
    factories.image_in(Status.APPROVED, annotator=alice, reviewer=bob, name="AAAA_001.png")
    edited(alice, bob, "AAAA_002.png", first=(("benign", SQUARE), ("malignant", TRI)))
    edited(erin, dave, "EEEE_001.png", second=(("malignant", SHIFTED), ("benign", [[60, 45], [80, 45], [70, 60]])))


def test_a_curator_sees_every_pair_with_plots_and_tables(pairs, carol):
    response = logged_in(carol).get("/agreement/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="pair-count">3 reviewed pairs' in html
    dice = plot(html, "plots-all")
    assert len(bars(dice)) == 10 and sum(bars(dice)) == 3
    # one unchanged approval (Dice 1, in the last bin), two edits
    assert bars(dice)[-1] >= 1
    report = response.context["report"]
    assert [g.key for g in report["as_annotator"]] == ["alice", "erin"]
    assert [g.key for g in report["pairs"]] == ["alice → bob", "erin → dave"]
    assert [(g.key, g.n, g.added, g.removed, g.flips) for g in report["as_reviewer"]] == [
        ("bob", 2, 0, 1, 1),
        ("dave", 1, 1, 0, 1),
    ]
    assert report["rounds"] == [(1, 3)]
    assert [g.key for g in report["patients"]] == ["AAAA", "EEEE"]


def test_the_confusion_table_counts_matched_pairs_by_label(pairs, carol):
    report = logged_in(carol).get("/agreement/").context["report"]
    rows = dict(report["confusion"])
    # alice's unchanged benign square (benign->benign); two benign squares turned malignant
    assert rows == {"benign": [1, 2], "malignant": [0, 0]}


def test_a_reader_sees_only_the_pairs_they_read(pairs, alice, erin, bob, dave):
    assert logged_in(alice).get("/agreement/").context["report"]["all"].n == 2
    erin_page = logged_in(erin).get("/agreement/")
    assert erin_page.context["report"]["all"].n == 1
    assert b"alice" not in erin_page.content.split(b"<main", 1)[1]
    assert logged_in(bob).get("/agreement/").context["report"]["all"].n == 2
    assert logged_in(dave).get("/agreement/").context["report"]["all"].n == 1
    assert logged_in(erin).get("/agreement/").context["patients"] == ["EEEE"]


def test_nobody_without_a_role_opens_the_page(pairs):
    assert logged_in(make_user("nobody")).get("/agreement/").status_code == 403


def test_the_patient_and_date_filters(pairs, carol):
    client = logged_in(carol)
    assert client.get("/agreement/?patient=EEEE").context["report"]["all"].n == 1
    Agreement.objects.filter(image__name="AAAA_001.png").update(
        decided_at=datetime.datetime(2025, 1, 15, 12, tzinfo=datetime.UTC)
    )
    assert client.get("/agreement/?date_to=2025-01-15").context["report"]["all"].n == 1
    assert client.get("/agreement/?date_from=2025-01-16").context["report"]["all"].n == 2
    assert client.get("/agreement/?patient=&date_from=&date_to=").context["report"]["all"].n == 3


@pytest.mark.parametrize(
    "query", ["patient=abc", "date_from=2025-13-01", "date_from=2025-02-01&date_to=2025-01-01", "patient=A%00AA"]
)
def test_a_bad_filter_is_a_400_that_shows_why(pairs, carol, query):
    response = logged_in(carol).get(f"/agreement/?{query}")
    assert response.status_code == 400
    assert b'id="filter-errors"' in response.content
    assert response.context["report"]["all"].n == 0


def page_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/agreement/").status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["carol", "bob"])
def test_the_page_runs_a_constant_number_of_queries(alice, bob, carol, who, request):
    client = logged_in(request.getfixturevalue(who))
    for i in range(2):
        edited(alice, bob, f"QQQQ_{i:03d}.png")
    few = page_queries(client)
    for i in range(2, 14):
        edited(alice, bob, f"{'QRST'[i % 4] * 4}_{i:03d}.png")
    assert Agreement.objects.count() == 14
    many = page_queries(client)
    assert few == many


def test_the_review_page_shows_the_per_lesion_figures_of_the_approval(alice, bob, carol, erin):
    image = edited(alice, bob, "AAAA_003.png", first=(("benign", SQUARE), ("malignant", TRI)))
    html = logged_in(bob).get(f"/images/{image.pk}/review/").content.decode()
    assert 'id="lesion-agreement"' in html
    row = Agreement.objects.get(image=image)
    match = row.matches[0]
    assert f"{match['dice']:.3f}" in html
    assert html.count('class="match flip"') == 1 and html.count('class="missed"') == 1
    assert 'id="lesion-agreement"' in logged_in(carol).get(f"/images/{image.pk}/review/").content.decode()
    # an image without an approval has no panel
    fresh = factories.submitted_image(alice, "AAAA_004.png")
    assert 'id="lesion-agreement"' not in logged_in(bob).get(f"/images/{fresh.pk}/review/").content.decode()


def test_hd95_in_mm_and_in_pixels_is_never_pooled(alice, bob, carol):
    spaced = edited(alice, bob, "MMMM_001.png")
    edited(alice, bob, "PXPX_001.png")
    spaced.__class__.objects.filter(pk=spaced.pk).update(pixel_spacing_x_mm=0.1, pixel_spacing_y_mm=0.1)
    call_recompute()
    response = logged_in(carol).get("/agreement/")
    group = response.context["report"]["all"]
    mm, px = Agreement.objects.get(image=spaced), Agreement.objects.exclude(image=spaced).get()
    assert (mm.unit, px.unit) == ("mm", "px")
    assert group.hd95_medians == [(mm.hd95, "mm"), (px.hd95, "px")]
    assert math.isclose(mm.hd95, px.hd95 * 0.1)
    html = response.content.decode()
    assert html.count('<svg class="hist"') >= 3  # Dice, HD95 in mm, HD95 in px for all pairs
    svgs = re.findall(r'<svg class="hist"[^>]*aria-label="HD95 \((mm|px)\), all readers', html)
    assert sorted(svgs) == ["mm", "px"]


def call_recompute() -> None:
    from django.core.management import call_command

    call_command("recompute_agreement", stdout=open("/dev/null", "w"))
