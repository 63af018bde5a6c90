"""Reader agreement in real Chromium: a reviewer's differing edit is stored as agreement, the curator's
agreement page plots it and filters by patient, the review page lists the per-lesion figures, and
the export's agreement CSV read back holds the metric module's numbers."""

from __future__ import annotations

import csv
import io
import math
import zipfile

import pytest

from annotator import agreement
from annotator.models import Agreement, Image, MaskLayer
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import at_queue, drag_image, open_review, outward, submitted_scan
from tests.factories import PASSWORD, alice, bob, carol

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def bar_counts(page, selector: str) -> list[int]:
    return [int(c) for c in page.eval_on_selector_all(f"{selector} rect.bar", "els => els.map(e => e.dataset.count)")]


def expected_for(image: Image) -> agreement.ImageAgreement:
    row = Agreement.objects.select_related("first_layer", "second_layer").get(image=image)
    return agreement.compare_layers(
        row.first_layer.geometry_lesions(),
        row.second_layer.geometry_lesions(),
        image.width,
        image.height,
        agreement.Spacing(image.pixel_spacing_x_mm, image.pixel_spacing_y_mm),
    )


def test_an_edit_is_measured_plotted_filtered_and_exported(login):
    annotator = alice()
    bob()
    carol()
    edited = submitted_scan("AGRE_000.png", annotator, seed=5)
    unchanged = submitted_scan("BGRE_000.png", annotator, seed=6)
    Image.objects.filter(pk__in=[edited.pk, unchanged.pk]).update(
        pixel_spacing_x_mm=0.08, pixel_spacing_y_mm=0.1, pixel_spacing_mm=math.sqrt(0.008)
    )

    # The reviewer moves a vertex well outward and approves the edit; the other image unchanged.
    rp = login("bob", PASSWORD)
    open_review(rp, edited)
    rp.click("#edit-approve")
    rp.click("#lesion-list li >> nth=0")
    ring = rp.evaluate("window.busViewer.lesions[0].points")
    moved = outward(ring, 0, 40)
    drag_image(rp, ring[0], moved)
    rp.click("#confirm-edit-approve")
    wait_until(lambda: Image.objects.get(pk=edited.pk).status == "approved", what="the approval")
    rp.wait_for_url(f"**/images/{unchanged.pk}/review/")  # the page moves on to the next submission
    open_review(rp, unchanged)
    rp.click("#approve")
    wait_until(lambda: Image.objects.get(pk=unchanged.pk).status == "approved", what="the second approval")
    rp.wait_for_url(at_queue)  # nothing left to review

    edited.refresh_from_db()
    assert edited.consensus.source == MaskLayer.Source.REVIEWER_EDIT
    row = Agreement.objects.get(image=edited)
    truth = expected_for(edited)
    assert row.unit == "mm" and row.dice < 1 and row.hd95 > 0
    assert math.isclose(row.dice, truth.whole.dice) and math.isclose(row.hd95, truth.whole.hd95)
    assert Agreement.objects.get(image=unchanged).dice == 1.0

    # The review page shows the approved layer's per-lesion figures next to the lesion list.
    open_review(rp, edited)
    panel = rp.locator("#lesion-agreement")
    assert panel.is_visible()
    assert f"{truth.lesions.matches[0].dice:.3f}" in panel.inner_text()

    # The curator's agreement page, reached from the navigation: two pairs, ten Dice bins.
    page = login("carol", PASSWORD)
    page.click("#nav-agreement")
    page.wait_for_selector("#plots-all svg")
    assert "2 reviewed pairs" in page.text_content("#pair-count")
    dice_plot = "#plots-all figure >> nth=0 >> svg"
    counts = bar_counts(page, "#plots-all figure:first-child svg")
    assert len(counts) == 10 and sum(counts) == 2 and counts[-1] >= 1
    assert page.locator(dice_plot).get_attribute("data-n") == "2"
    hd95 = bar_counts(page, "#plots-all figure:nth-child(2) svg")
    assert sum(hd95) == 2
    assert page.locator("#pairs tbody tr").count() == 1  # alice → bob

    # Filter by patient: one pair left, the plot redrawn with it.
    page.select_option("#filter-patient", "AGRE")
    page.click("#agreement-filter [type=submit]")
    page.wait_for_url("**/agreement/?*patient=AGRE*")
    assert "1 reviewed pair" in page.text_content("#pair-count")
    counts = bar_counts(page, "#plots-all figure:first-child svg")
    assert sum(counts) == 1 and counts[-1] == (1 if truth.whole.dice >= 0.9 else 0)
    assert page.locator("#patients tbody tr").count() == 1

    # The export page's download, read back: the agreement CSV holds the module's numbers.
    page.goto("/dataset/export/")
    with page.expect_download() as info:
        page.click("#download")
    with zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read())) as zf:
        text = zf.read("agreement.csv").decode("utf-8-sig")
    rows = {r["Image"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert set(rows) == {"AGRE_000.png", "BGRE_000.png"}
    got = rows["AGRE_000.png"]
    assert got["Unit"] == "mm" and got["Decision"] == "edited_approved"
    for column, value in (
        ("Dice", truth.whole.dice),
        ("IoU", truth.whole.iou),
        ("HD95", truth.whole.hd95),
        ("ASSD", truth.whole.assd),
        ("Hausdorff", truth.whole.hausdorff),
    ):
        assert math.isclose(float(got[column]), value, abs_tol=1e-9), column
    assert got["LesionsMatched"] == str(len(truth.lesions.matches))
    assert rows["BGRE_000.png"]["Dice"] == "1.0"
    assert page.js_errors == [] and rp.js_errors == []
