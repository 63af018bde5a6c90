"""The ``lesions`` export (lesions.csv) and the descriptors as COCO attributes, read back as users will."""

import csv
import io
import json
import math
import zipfile

import pytest
from pycocotools.coco import COCO

from annotator import exporting, geometry, workflow
from annotator.exporting.base import ExportOptions
from annotator.models import Image
from tests.factories import make_image

pytestmark = pytest.mark.django_db

RECT = [[10.0, 10.0], [50.0, 10.0], [50.0, 30.0], [10.0, 30.0]]  # 40 x 20 px vertex to vertex
TRI = [[60.0, 5.0], [90.0, 5.0], [75.0, 40.0]]
DESCRIBED = {"shape": "irregular", "margin": ["angular", "spiculated"], "posterior_features": "shadowing"}


def approved(name, annotator, reviewer, lesions, *, assessment="", is_normal=False, **image_kw) -> Image:
    image = make_image(name, annotator=annotator, **image_kw)
    layer = workflow.start(image_id=image.pk, user=annotator)
    content = workflow.LayerContent(lesions=lesions, is_normal=is_normal, assessment=assessment)
    layer = workflow.save_draft(layer_id=layer.pk, user=annotator, content=content, expected_version=layer.version)
    workflow.submit(layer_id=layer.pk, user=annotator)
    workflow.approve(image_id=image.pk, user=reviewer)
    return Image.objects.get(pk=image.pk)


def export(tmp_path, formats) -> zipfile.ZipFile:
    out = tmp_path / "export.zip"
    with open(out, "wb") as f:
        exporting.write_zip(f, ExportOptions(formats=formats))
    return zipfile.ZipFile(out)


@pytest.fixture
def dataset(alice, bob):
    calibrated = approved(
        "CALI_000.png",
        alice,
        bob,
        [
            geometry.Lesion("malignant", RECT, descriptors=DESCRIBED),
            geometry.Lesion("benign", TRI),
        ],
        assessment="4C",
        pixel_spacing_mm=math.sqrt(0.1 * 0.2),
    )
    Image.objects.filter(pk=calibrated.pk).update(pixel_spacing_x_mm=0.1, pixel_spacing_y_mm=0.2)
    approved("NORM_000.png", alice, bob, [], assessment="1", is_normal=True)
    approved("PLAI_000.png", alice, bob, [geometry.Lesion("benign", RECT)])
    return calibrated


def test_lesions_csv_has_one_row_per_lesion_with_measurements_descriptors_and_assessment(dataset, tmp_path):
    with export(tmp_path, ["lesions"]) as zf:
        raw = zf.read("lesions.csv")
        assert "INFO.csv" not in zf.namelist()
    assert raw.startswith("\ufeff".encode()) and b"\r\n" not in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert list(rows[0]) == [
        "Image",
        "Lesion",
        "Label",
        "Area_px",
        "Area_mm2",
        "Longest_diameter",
        "Perpendicular_diameter",
        "Diameter_unit",
        "Shape",
        "Orientation",
        "Margin",
        "Echo_pattern",
        "Posterior_features",
        "Calcifications",
        "Associated_features",
        "Assessment",
    ]
    assert [(r["Image"], r["Lesion"], r["Label"]) for r in rows] == [
        ("CALI_000.png", "1", "malignant"),
        ("CALI_000.png", "2", "benign"),
        ("NORM_000.png", "", "normal"),
        ("PLAI_000.png", "1", "benign"),
    ]
    rect, tri, normal, plain = rows
    # 41 x 21 painted pixels; 0.1 x 0.2 mm each; the rectangle is 4 x 4 mm: diagonals 4 sqrt(2) mm.
    assert rect["Area_px"] == "861" and rect["Area_mm2"] == f"{861 * 0.02:.2f}"
    assert rect["Longest_diameter"] == rect["Perpendicular_diameter"] == f"{4 * math.sqrt(2):.2f}"
    assert rect["Diameter_unit"] == "mm"
    assert rect["Shape"] == "irregular" and rect["Margin"] == "angular|spiculated"
    assert rect["Posterior_features"] == "shadowing" and rect["Orientation"] == ""
    assert rect["Assessment"] == tri["Assessment"] == "4C"
    assert int(tri["Area_px"]) == geometry.pixel_area(geometry.Lesion("benign", TRI), 96, 64)
    assert tri["Shape"] == ""
    assert normal["Assessment"] == "1" and normal["Area_px"] == ""
    assert plain["Diameter_unit"] == "px" and plain["Area_mm2"] == ""
    assert plain["Longest_diameter"] == f"{math.hypot(40, 20):.2f}"
    assert plain["Assessment"] == ""


def test_stored_areas_and_exported_areas_agree(dataset, tmp_path):
    with export(tmp_path, ["lesions"]) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("lesions.csv").decode("utf-8-sig")), delimiter=";"))
    stored = [les.area_px for les in dataset.consensus.lesions.order_by("index")]
    assert [int(r["Area_px"]) for r in rows if r["Image"] == "CALI_000.png"] == stored


def test_coco_annotations_carry_the_descriptors_as_attributes(dataset, tmp_path):
    with export(tmp_path, ["coco", "bus-uclm"]) as zf:
        doc = json.loads(zf.read("annotations/instances.json"))
        info = zf.read("INFO.csv").decode("utf-8-sig").splitlines()
    assert info[0] == "Image;Resolution;Label;Doppler;Marks;Combined"  # INFO.csv untouched by descriptors
    (plain,) = [i for i in doc["images"] if i["file_name"] == "PLAI_000.png"]
    assert "birads_assessment" not in plain
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    coco = COCO(str(path))
    (cali,) = [i for i in coco.dataset["images"] if i["file_name"] == "CALI_000.png"]
    assert cali["birads_assessment"] == "4C"
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[cali["id"]]))
    by_category = {coco.loadCats(a["category_id"])[0]["name"]: a for a in anns}
    assert by_category["Malignant"]["attributes"] == {"lesion": 1, **DESCRIBED}
    assert "attributes" not in by_category["Benign"]  # not described: the annotation is as before
    assert by_category["Malignant"]["area"] == 861  # the same pixel count as lesions.csv
