"""The ``agreement`` export format, read back from the ZIP and checked against annotator.agreement."""

import csv
import io
import math
import zipfile

import pytest

from annotator import agreement, exporting, workflow
from annotator.models import Image, Status
from tests.factories import content, make_image

pytestmark = pytest.mark.django_db

# The documented columns (README, Export), written out here rather than read from the exporter.
HEADER = (
    "Image;Patient;Round;Decided;Decision;Pair;FirstReader;SecondReader;FirstLabel;SecondLabel;"
    "NormalLesionDisagreement;Dice;IoU;BenignDice;BenignIoU;MalignantDice;MalignantIoU;Hausdorff;HD95;ASSD;"
    "Unit;SpacingX;SpacingY;LesionsMatched;LesionsAdded;LesionsMissed;LabelFlips"
).split(";")
LESION_HEADER = (
    "Image;Round;FirstReader;SecondReader;Pair;Outcome;FirstLesion;SecondLesion;FirstLabel;SecondLabel;"
    "LabelFlip;IoU;Dice;Hausdorff;HD95;ASSD;Unit"
).split(";")

SQUARE = [[10, 10], [40, 10], [40, 40], [10, 40]]
SHIFTED = [[14, 10], [44, 10], [44, 40], [14, 40]]
TRI = [[60, 5], [90, 5], [75, 40]]
LOW = [[60, 45], [80, 45], [70, 60]]


def export(**kw) -> zipfile.ZipFile:
    buf = io.BytesIO()
    exporting.write_zip(buf, exporting.ExportOptions(formats=["agreement"], **kw))
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def read_csv(zf: zipfile.ZipFile, name: str) -> list[dict]:
    raw = zf.read(name)
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    assert "\r" not in text
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def close(text: str, value) -> bool:
    if value is None:
        return text == ""
    return math.isclose(float(text), value, rel_tol=0, abs_tol=1e-9)


@pytest.fixture
def edited(alice, bob):
    image = make_image("EDIT_001.png", annotator=alice)
    Image.objects.filter(pk=image.pk).update(pixel_spacing_x_mm=0.1, pixel_spacing_y_mm=0.2, pixel_spacing_mm=0.1414)
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(("benign", SQUARE), ("malignant", TRI)),
        expected_version=layer.version,
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    review = workflow.edit_and_approve(
        image_id=image.pk, user=bob, content=content(("malignant", SHIFTED), ("benign", LOW))
    )
    image.refresh_from_db()
    return image, review


def test_the_agreement_csv_holds_the_metric_modules_figures(edited, alice, bob):
    image, review = edited
    expected = agreement.compare_layers(
        review.layer.geometry_lesions(),
        image.consensus.geometry_lesions(),
        image.width,
        image.height,
        agreement.Spacing(0.1, 0.2),
    )
    zf = export()
    rows = read_csv(zf, "agreement.csv")
    assert list(rows[0]) == HEADER
    (row,) = rows
    assert (row["Image"], row["Patient"], row["Round"], row["Decision"]) == (
        "EDIT_001.png",
        "EDIT",
        "1",
        "edited_approved",
    )
    assert (row["FirstLabel"], row["SecondLabel"], row["NormalLesionDisagreement"]) == ("Malignant", "Malignant", "No")
    assert row["Unit"] == "mm" and close(row["SpacingX"], 0.1) and close(row["SpacingY"], 0.2)
    assert close(row["Dice"], expected.whole.dice) and close(row["IoU"], expected.whole.iou)
    assert close(row["Hausdorff"], expected.whole.hausdorff)
    assert close(row["HD95"], expected.whole.hd95) and close(row["ASSD"], expected.whole.assd)
    assert close(row["BenignDice"], expected.per_label["benign"].dice)
    assert close(row["MalignantIoU"], expected.per_label["malignant"].iou)
    lesions = expected.lesions
    assert (
        (row["LesionsMatched"], row["LesionsAdded"], row["LesionsMissed"], row["LabelFlips"])
        == (
            str(len(lesions.matches)),
            str(len(lesions.added)),
            str(len(lesions.missed)),
            str(lesions.label_flips),
        )
        == ("1", "1", "1", "1")
    )
    # readers are codes, never names
    assert (row["FirstReader"], row["SecondReader"]) == ("R01", "R02")
    for name in (alice.username, bob.username):
        assert name.encode() not in zf.read("agreement.csv") + zf.read("agreement_lesions.csv")


def test_the_lesion_csv_lists_matches_misses_and_additions(edited):
    image, review = edited
    expected = agreement.compare_layers(
        review.layer.geometry_lesions(),
        image.consensus.geometry_lesions(),
        image.width,
        image.height,
        agreement.Spacing(0.1, 0.2),
    ).lesions
    rows = read_csv(export(), "agreement_lesions.csv")
    assert list(rows[0]) == LESION_HEADER
    by_outcome = {r["Outcome"]: r for r in rows}
    assert len(rows) == 3 and set(by_outcome) == {"matched", "missed", "added"}
    m, match = by_outcome["matched"], expected.matches[0]
    assert (m["FirstLesion"], m["SecondLesion"], m["FirstLabel"], m["SecondLabel"], m["LabelFlip"]) == (
        str(match.first),
        str(match.second),
        "Benign",
        "Malignant",
        "Yes",
    )
    for column, value in (("IoU", match.iou), ("Dice", match.dice), ("HD95", match.hd95), ("ASSD", match.assd)):
        assert close(m[column], value), column
    assert (by_outcome["missed"]["FirstLesion"], by_outcome["missed"]["FirstLabel"]) == ("1", "Malignant")
    assert (by_outcome["added"]["SecondLesion"], by_outcome["added"]["SecondLabel"]) == ("1", "Benign")
    assert by_outcome["added"]["Dice"] == "" and by_outcome["added"]["Unit"] == "mm"


def test_only_the_exported_images_rows_are_written(edited, image_in):
    image_in(Status.APPROVED, "OTHR_001.png")
    both = read_csv(export(), "agreement.csv")
    assert [r["Image"] for r in both] == ["EDIT_001.png", "OTHR_001.png"]
    one = read_csv(export(patients=["OTHR"]), "agreement.csv")
    assert [r["Image"] for r in one] == ["OTHR_001.png"]
    # an unchanged approval in pixels: perfect agreement, unit px, no spacing
    assert (one[0]["Dice"], one[0]["HD95"], one[0]["Unit"], one[0]["SpacingX"]) == ("1.0", "0.0", "px", "")
    # the same reader keeps the same code when exported alone
    assert one[0]["FirstReader"] == both[1]["FirstReader"]
