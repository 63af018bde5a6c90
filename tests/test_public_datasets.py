"""The public datasets' importers (BUSI, BrEaST-Lesions_USG, BUS-BRA) on small fixtures built here in
each release's exact layout, quirks included; the mixed export's sources.csv and splits."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import PIL.Image
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotator import geometry, importing
from annotator.exporting import ExportOptions, write_zip
from annotator.exporting.splits import assign_folds
from annotator.importing import breast as breast_import
from annotator.models import Image, MaskLayer, Status
from annotator.permissions import CURATOR
from tests.factories import make_user, png_bytes

pytestmark = pytest.mark.django_db

W, H = 80, 60


def encode(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def blob(cx: int, cy: int, rx: int = 10, ry: int = 7, *, size=(W, H)) -> np.ndarray:
    """A 0/255 greyscale mask with one filled ellipse."""
    plane = np.zeros((size[1], size[0]), np.uint8)
    cv2.ellipse(plane, (cx, cy), (rx, ry), 0, 0, 360, 255, -1)
    return plane


def rgb(plane: np.ndarray) -> np.ndarray:
    return np.stack([plane] * 3, axis=-1)


def run(path: Path, **options) -> importing.ImportReport:
    return importing.import_dataset(
        importing.folder_source(path), actor=importing.importer_user(), options=importing.ImportOptions(**options)
    )


def defects(report) -> str:
    return "\n".join(str(d) for d in report.defects)


def stored(source_file: str) -> Image:
    return Image.objects.get(source_file=source_file)


def lesions_of(image: Image) -> list:
    layer = image.consensus or MaskLayer.objects.filter(image=image).order_by("-revision").first()
    return list(layer.lesions.order_by("index")) if layer else []


# --- BUSI -------------------------------------------------------------------------------------


def busi(root: Path) -> Path:
    """Dataset_BUSI_with_GT as published, with its known quirks."""
    top = root / "Dataset_BUSI_with_GT"
    files = {
        # one lesion, 8-bit greyscale 0/255 mask
        "benign/benign (1).png": png_bytes(W, H, seed=1),
        "benign/benign (1)_mask.png": encode(blob(20, 20)),
        # two lesions in two files; the first mask is greyscale saved as RGB
        "benign/benign (2).png": png_bytes(W, H, seed=2),
        "benign/benign (2)_mask.png": encode(rgb(blob(20, 20))),
        "benign/benign (2)_mask_1.png": encode(blob(60, 40)),
        # stray values along the edge (resampled mask)
        "benign/benign (10).png": png_bytes(W, H, seed=10),
        "benign/benign (10)_mask.png": encode(cv2.GaussianBlur(blob(40, 30), (5, 5), 0)),
        # mask twice the image's size
        "malignant/malignant (1).png": png_bytes(W, H, seed=11),
        "malignant/malignant (1)_mask.png": encode(blob(80, 60, 20, 14, size=(2 * W, 2 * H))),
        # no mask at all
        "malignant/malignant (2).png": png_bytes(W, H, seed=12),
        # the same picture as benign (1), in another class
        "malignant/malignant (3).png": png_bytes(W, H, seed=1),
        "malignant/malignant (3)_mask.png": encode(blob(20, 20)),
        # a mask without its image
        "malignant/malignant (4)_mask.png": encode(blob(20, 20)),
        # a colour mask (channels differ)
        "malignant/malignant (5).png": png_bytes(W, H, seed=15),
        "malignant/malignant (5)_mask.png": encode(
            np.stack([blob(30, 30), np.zeros((H, W), np.uint8), blob(30, 30)], -1)
        ),
        # normal: an empty mask
        "normal/normal (1).png": png_bytes(W, H, seed=21),
        "normal/normal (1)_mask.png": encode(np.zeros((H, W), np.uint8)),
        # an unrelated file
        "normal/Thumbs.db": b"\x00" * 10,
    }
    for name, data in files.items():
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_bytes(data)
    return root


def test_busi_is_recognised_and_imported_with_its_quirks_reported(tmp_path):
    report = run(busi(tmp_path / "busi"))
    text = defects(report)
    assert Image.objects.count() == 7
    # Each image is its own pseudo-patient, under a BUS-UCLM-style name, the source kept.
    one = stored("benign/benign (1).png")
    assert one.name.endswith("_000.png") and len({i.patient_id for i in Image.objects.all()}) == 7
    assert (one.source_dataset, one.source_licence) == ("BUSI", "CC0-1.0")
    assert one.source_metadata == {"class": "benign", "mask_files": ["benign (1)_mask.png"]}
    assert one.status == Status.APPROVED and [les.label for les in lesions_of(one)] == ["benign"]
    # Two mask files: two lesions, both of the folder's class.
    two = stored("benign/benign (2).png")
    assert two.status == Status.APPROVED and [les.label for les in lesions_of(two)] == ["benign", "benign"]
    assert "benign (2)_mask.png" not in text  # greyscale saved as RGB is read silently
    # Stray values: thresholded, reported, and put up for review rather than approved.
    stray = stored("benign/benign (10).png")
    assert "benign (10)_mask.png: " in text and "pixels are neither 0 nor 255 -> thresholded at 128" in text
    assert stray.status == Status.SUBMITTED and len(lesions_of(stray)) == 1
    # Size mismatch: resized to the image, reported, for review; the lesion lands where it was drawn.
    big = stored("malignant/malignant (1).png")
    assert "malignant (1)_mask.png: mask is 160x120 but the image is 80x60" in text
    assert big.status == Status.SUBMITTED
    (lesion,) = lesions_of(big)
    assert lesion.label == "malignant"
    assert geometry.bbox(lesion.as_geometry()) == pytest.approx([30, 23, 21, 15], abs=1)
    # No mask: imported without a layer, to be drawn.
    bare = stored("malignant/malignant (2).png")
    assert bare.status == Status.NEW and not MaskLayer.objects.filter(image=bare).exists()
    assert "malignant (2).png: class malignant but no lesion mask" in text
    # The duplicate across classes is kept once.
    assert "malignant/malignant (3).png: the same pixels as Dataset_BUSI_with_GT/benign/benign (1).png" in text
    assert not Image.objects.filter(source_file="malignant/malignant (3).png").exists()
    assert "malignant (4)_mask.png: mask without an image -> skipped" in text
    assert "malignant (5)_mask.png: colour mask (channels differ), not greyscale -> brightest channel used" in text
    normal = stored("normal/normal (1).png")
    assert normal.status == Status.APPROVED and normal.consensus.is_normal and lesions_of(normal) == []
    assert "normal/Thumbs.db: not a BUSI image or mask" in text
    assert sorted(report.failed) == ["Dataset_BUSI_with_GT/malignant/malignant (3).png"]
    assert set(report.imported) == set(Image.objects.values_list("name", flat=True))

    again = run(tmp_path / "busi")
    assert again.imported == [] and len(again.unchanged) == 7 and Image.objects.count() == 7
    assert again.failed == report.failed and "the same pixels as" in defects(again)


def test_busi_class_name_disagreeing_with_its_folder_and_a_stray_normal_mask(tmp_path):
    top = tmp_path / "b" / "Dataset_BUSI_with_GT"
    (top / "benign").mkdir(parents=True)
    (top / "normal").mkdir()
    (top / "benign" / "malignant (7).png").write_bytes(png_bytes(W, H, seed=7))
    (top / "benign" / "malignant (7)_mask.png").write_bytes(encode(blob(30, 30)))
    (top / "normal" / "normal (3).png").write_bytes(png_bytes(W, H, seed=8))
    (top / "normal" / "normal (3)_mask.png").write_bytes(encode(blob(30, 30)))
    report = run(tmp_path / "b", dataset="busi")
    text = defects(report)
    assert "named malignant but in the benign folder -> class benign used" in text
    assert [les.label for les in lesions_of(stored("benign/malignant (7).png"))] == ["benign"]
    assert "normal (3).png: class normal but its mask marks a region" in text
    assert stored("normal/normal (3).png").status == Status.NEW


def encode_mode(plane: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    if mode == "I;16":
        PIL.Image.fromarray(plane.astype(np.uint16) * 257).save(buf, format="PNG")
    elif mode == "0/1":
        PIL.Image.fromarray((plane > 0).astype(np.uint8)).save(buf, format="PNG")
    else:
        PIL.Image.fromarray(plane).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "mode, reported",
    [
        ("L", None),
        ("1", None),
        ("P", None),
        ("LA", None),
        ("RGBA", None),
        ("0/1", None),
        ("I;16", "16 mask, not 8-bit -> read as 8-bit (high byte)"),
    ],
)
def test_each_binary_mask_encoding_reads_the_same_region(mode, reported):
    from annotator.importing.public import MaskFile, read_binary_mask

    plane = blob(30, 25)
    data = encode_mode(plane, mode)
    report, doubts = importing.ImportReport(), []
    read = read_binary_mask(MaskFile("m.png", lambda: data), (W, H), 1, report, doubts)
    assert np.array_equal(read, plane > 0) and doubts == []
    if reported is None:
        assert defects(report) == ""
    else:
        assert reported in defects(report)


# --- BrEaST-Lesions_USG -----------------------------------------------------------------------

BREAST_HEADER = [
    "CaseID",
    "Image_filename",
    "Mask_tumor_filename",
    "Mask_other_filename",
    "Pixel_size",
    "Age",
    "Shape",
    "Margin",
    "Echogenicity",
    "Posterior_features",
    "Calcifications",
    "BIRADS",
    "Classification",
]
BREAST_ROWS = [
    [
        1,
        "case001.png",
        "case001_tumor.png",
        "case001_other1.png&case001_other2.png",
        0.0762,
        45,
        "oval",
        "circumscribed",
        "hypoechoic",
        "enhancement",
        "no",
        "3",
        "benign",
    ],
    [
        2,
        "case002.png",
        "case002_tumor.png",
        "not applicable",
        "0,0681",
        61,
        "irregular",
        "indistinct&spiculated",
        "heterogeneous",
        "shadowing",
        "in a mass",
        "4c",
        "malignant",
    ],
    [
        3,
        "case003.png",
        "not applicable",
        "not applicable",
        0.07,
        50,
        "not applicable",
        "not applicable",
        "not applicable",
        "not applicable",
        "not applicable",
        "1",
        "normal",
    ],
    [
        4,
        "case004.png",
        "case004_tumor.png",
        None,
        "big",
        38,
        "lobulated",
        "not circumscribed - angular&not circumscribed - microlobulated",
        "complex cystic/solid",
        "no",
        "indefinable",
        "4",
        "benign",
    ],
    [
        5,
        "case005.png",
        "case005_tumor.png",
        None,
        0.08,
        70,
        "oval",
        "circumscribed",
        "hypoechoic",
        "no",
        "no",
        "3",
        "unknown",
    ],
    [
        6,
        "case006.png",
        "case006_tumor.png",
        None,
        0.08,
        70,
        "oval",
        "circumscribed",
        "hypoechoic",
        "no",
        "no",
        "3",
        "benign",
    ],
]


def breast(root: Path, rows=BREAST_ROWS) -> Path:
    folder = root / "BrEaST-Lesions_USG-images_and_masks"
    folder.mkdir(parents=True)
    for n in (1, 2, 3, 4, 5):
        (folder / f"case{n:03d}.png").write_bytes(png_bytes(W, H, seed=100 + n))
    for n in (1, 2, 4, 5):
        (folder / f"case{n:03d}_tumor.png").write_bytes(encode(blob(30 + n, 30)))
    (folder / "case001_other1.png").write_bytes(encode(blob(60, 45, 5, 5)))
    (folder / "case001_other2.png").write_bytes(encode(blob(10, 50, 4, 4)))
    (folder / "case007.png").write_bytes(png_bytes(W, H, seed=107))  # not in the sheet
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "BrEaST-Lesions-USG"
    sheet.append(BREAST_HEADER)
    for row in rows:
        sheet.append(row)
    book.save(root / "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx")
    return root


def test_breast_reads_the_spreadsheet_masks_spacing_and_reports_what_it_cannot_use(tmp_path):
    report = run(breast(tmp_path / "breast"))
    text = defects(report)
    one = stored("case001.png")
    assert (one.source_dataset, one.source_licence) == ("BrEaST-Lesions_USG", "CC-BY-4.0")
    assert one.pixel_spacing_mm == pytest.approx(0.0762) and one.pixel_spacing_x_mm == pytest.approx(0.0762)
    # Only the tumour mask is a lesion; the other findings' masks are named in the metadata.
    assert [les.label for les in lesions_of(one)] == ["benign"] and one.status == Status.APPROVED
    assert one.source_metadata["other_findings"] == ["case001_other1.png", "case001_other2.png"]
    assert one.source_metadata["birads_columns"]["Shape"] == "oval"
    two = stored("case002.png")
    assert two.pixel_spacing_mm == pytest.approx(0.0681)  # a decimal comma
    assert [les.label for les in lesions_of(two)] == ["malignant"]
    assert two.source_metadata["birads_columns"]["Margin"] == "indistinct&spiculated"
    normal = stored("case003.png")
    assert normal.consensus.is_normal and normal.status == Status.APPROVED
    four = stored("case004.png")
    assert four.pixel_spacing_mm is None and "row 5 (case004.png): Pixel_size is 'big', not a size in mm" in text
    # The BI-RADS columns on the lexicon: the tumour lesion's descriptors and the assessment.
    (lesion,) = lesions_of(one)
    assert lesion.descriptors == {
        "shape": "oval",
        "margin": ["circumscribed"],
        "echo_pattern": "hypoechoic",
        "posterior_features": "enhancement",
    }
    assert one.consensus.assessment == "3"
    (lesion,) = lesions_of(two)
    assert lesion.descriptors == {
        "shape": "irregular",
        "margin": ["indistinct", "spiculated"],
        "echo_pattern": "heterogeneous",
        "posterior_features": "shadowing",
        "calcifications": ["in_mass"],
    }
    assert two.consensus.assessment == "4C" and normal.consensus.assessment == "1"
    # Values without a lexicon counterpart are reported, kept in the metadata, never set.
    (lesion,) = lesions_of(four)
    assert lesion.descriptors == {
        "margin": ["angular", "microlobulated"],
        "echo_pattern": "complex_cystic_solid",
        "posterior_features": "none",
    }
    assert four.consensus.assessment == ""
    kept = "-> kept in the image's metadata (birads_columns), not set"
    for problem in (
        "Shape 'lobulated' has no BI-RADS lexicon value",
        "Calcifications 'indefinable' has no BI-RADS lexicon value",
        "BIRADS '4' is not an assessment category (0, 1, 2, 3, 4A, 4B, 4C, 5, 6)",
    ):
        assert f"row 5 (case004.png): {problem} {kept}" in text
    assert four.source_metadata["birads_columns"]["Shape"] == "lobulated"
    assert four.source_metadata["birads_columns"]["BIRADS"] == "4"
    five = stored("case005.png")
    assert "row 6 (case005.png): Classification is 'unknown' -> imported without a layer" in text
    assert five.status == Status.NEW
    assert "row 7 (case006.png): its image file is not in the upload -> row skipped" in text
    assert "case007.png: not named in the spreadsheet -> skipped" in text
    # Each case is its own patient.
    assert len({i.patient_id for i in Image.objects.all()}) == Image.objects.count() == 5


def test_breast_descriptors_the_lexicon_refuses_are_reported_not_set():
    report = importing.ImportReport()
    row = {
        "Shape": "oval&round",
        "Margin": "circumscribed&spiculated",
        "Posterior_features": "shadowing",
        "BIRADS": "4b",
    }
    descriptors, assessment = breast_import.map_descriptors(row, "row 9", report)
    assert descriptors == {"posterior_features": "shadowing"} and assessment == "4B"
    assert defects(report).splitlines() == [
        "row 9: Shape has several values ['oval', 'round'] -> kept in the image's metadata (birads_columns), not set",
        "row 9: margin 'circumscribed' cannot be combined with spiculated -> kept in the image's metadata "
        "(birads_columns), not set",
    ]


def test_a_breast_sheet_without_its_columns_imports_nothing(tmp_path):
    root = tmp_path / "b"
    breast(root)
    book = openpyxl.Workbook()
    book.active.append(["CaseID", "Image_filename"])
    book.save(root / "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx")
    with pytest.raises(importing.ImportRefused, match="no column Mask_tumor_filename, Classification"):
        run(root)
    assert Image.objects.count() == 0


# --- BUS-BRA ----------------------------------------------------------------------------------


def busbra(root: Path) -> Path:
    (root / "Images").mkdir(parents=True)
    (root / "Masks").mkdir()
    for i, ident in enumerate(["0001-l", "0001-r", "0002-l", "0003-s"]):
        (root / "Images" / f"bus_{ident}.png").write_bytes(png_bytes(W, H, seed=200 + i))
    for ident in ["0001-l", "0001-r", "0002-l"]:
        (root / "Masks" / f"mask_{ident}.png").write_bytes(encode(blob(40, 30)))
    (root / "bus_data.csv").write_text(
        "ID,Case,Histology,Pathology,BIRADS,Device,Side,Height,Width,BBOX\n"
        'bus_0001-l,1,Fibroadenoma,benign,3,GE Logiq 7,left,60,80,"[30, 23, 21, 15]"\n'
        'bus_0001-r,1,Fibroadenoma,benign,3,GE Logiq 7,right,60,80,"[30, 23, 21, 15]"\n'
        'bus_0002-l,2,Invasive ductal carcinoma,malignant,5,Toshiba,left,60,80,"[30, 23, 21, 15]"\n'
        'bus_0003-s,3,Cyst,benign,2,Toshiba,left,60,80,"[0, 0, 1, 1]"\n'
        'bus_0009-l,9,Cyst,benign,2,Toshiba,left,60,80,"[0, 0, 1, 1]"\n'
    )
    (root / "5-fold-cv.csv").write_text("ID,kFold\nbus_0001-l,1\nbus_0001-r,1\nbus_0002-l,4\nbus_0003-s,2\n")
    return root


def test_bus_bra_groups_a_case_as_one_patient_and_keeps_its_folds(tmp_path):
    report = run(busbra(tmp_path / "busbra"))
    text = defects(report)
    left, right = stored("bus_0001-l.png"), stored("bus_0001-r.png")
    assert left.patient_id == right.patient_id and {left.number, right.number} == {0, 1}
    assert left.source_metadata == {
        "histology": "Fibroadenoma",
        "pathology": "benign",
        "birads": "3",
        "device": "GE Logiq 7",
        "side": "left",
        "case": "1",
        "folds": {"5-fold-cv": "1"},
    }
    malignant = stored("bus_0002-l.png")
    assert malignant.patient_id != left.patient_id and [les.label for les in lesions_of(malignant)] == ["malignant"]
    assert malignant.source_dataset == "BUS-BRA"
    assert "line 5 (bus_0003-s): no mask in Masks/" in text and stored("bus_0003-s.png").status == Status.NEW
    assert "line 6 (bus_0009-l): its image is not in Images/ -> row skipped" in text


# --- through the API, and the choice of layout ------------------------------------------------


def zipped(folder: Path) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    buf.seek(0)
    buf.name = "dataset.zip"
    return buf


def test_a_zip_of_each_dataset_is_recognised_by_the_import_api(tmp_path):
    client = APIClient()
    client.force_authenticate(make_user("carol", CURATOR))
    for folder, dataset in ((busi(tmp_path / "a"), "BUSI"), (busbra(tmp_path / "c"), "BUS-BRA")):
        response = client.post("/api/import/", {"archive": zipped(folder)}, format="multipart")
        assert response.status_code == 200, response.json()
        assert response.json()["imported"] == Image.objects.filter(source_dataset=dataset).count() > 0
    response = client.post("/api/import/", {"archive": zipped(breast(tmp_path / "b")), "dataset": "breast"})
    assert response.status_code == 200 and Image.objects.filter(source_dataset="BrEaST-Lesions_USG").count() == 5
    response = client.post("/api/import/", {"archive": zipped(tmp_path / "c"), "dataset": "nonsense"})
    assert response.status_code == 400 and "dataset" in str(response.content)
    # A layout chosen that the ZIP does not follow: a clear 400, nothing imported.
    before = Image.objects.count()
    response = client.post("/api/import/", {"archive": zipped(tmp_path / "a"), "dataset": "bus-bra"})
    assert response.status_code == 400 and response.json()["code"] == "import_refused"
    assert "nothing found in the BUS-BRA layout: bus_data.csv: not in the upload" in response.json()["detail"]
    assert Image.objects.count() == before


def test_a_chosen_layout_that_does_not_fit_is_refused(tmp_path):
    with pytest.raises(importing.ImportRefused, match="nothing found in the BUS-BRA layout: bus_data.csv: not in"):
        run(busi(tmp_path / "a"), dataset="bus-bra")
    with pytest.raises(importing.ImportRefused, match="no .xlsx in the upload"):
        run(tmp_path / "a", dataset="breast")
    assert Image.objects.count() == 0


# --- the mixed export -------------------------------------------------------------------------


def read_csv(zf: zipfile.ZipFile, name: str, *, bom: bool = True) -> list[list[str]]:
    data = zf.read(name)
    assert data.startswith(b"\xef\xbb\xbf") == bom and b"\r" not in data
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def test_a_mixed_export_names_each_images_source_and_splits_keep_sources_apart(tmp_path):
    run(busi(tmp_path / "a"))
    run(breast(tmp_path / "b"))
    run(busbra(tmp_path / "c"))
    out = tmp_path / "export.zip"
    with out.open("wb") as fh:
        write_zip(fh, ExportOptions(formats=["bus-uclm", "splits"]))
    approved = {i.name: i for i in Image.objects.filter(status=Status.APPROVED)}
    with zipfile.ZipFile(out) as zf:
        sources = read_csv(zf, "sources.csv")
        assert sources[0] == ["Image", "Dataset", "SourceFile", "Licence"]
        assert sorted(r[0] for r in sources[1:]) == sorted(approved) == [r[0] for r in sources[1:]]
        for name, dataset, source_file, licence in sources[1:]:
            image = approved[name]
            assert (dataset, source_file, licence) == (image.source_dataset, image.source_file, image.source_licence)
        assert ["Image;Resolution;Label;Doppler;Marks;Combined"] == zf.read("INFO.csv").decode(
            "utf-8-sig"
        ).splitlines()[:1]
        # The masks read back: BUSI's two-file image has two green lesions where they were drawn.
        two = stored("benign/benign (2).png").name
        mask = np.asarray(PIL.Image.open(io.BytesIO(zf.read(f"masks/{two}"))).convert("RGB"))
        green = cv2.inRange(mask, (0, 255, 0), (0, 255, 0))
        assert cv2.connectedComponents(green)[0] - 1 == 2
        assert (green > 0).sum() == (blob(20, 20) > 0).sum() + (blob(60, 40) > 0).sum()
        splits = read_csv(zf, "splits.csv", bom=False)[1:]  # splits.csv's own convention: no BOM
    fold_of = {name: fold for name, _, fold in splits}
    patient_source = {}
    for name, patient, _ in splits:
        assert patient_source.setdefault(patient, approved[name].source_dataset) == approved[name].source_dataset
        assert {fold_of[n] for n, p, _ in splits if p == patient} == {fold_of[name]}
    # Each source is dealt on its own: its patients spread over the folds as if exported alone.
    for dataset in {i.source_dataset for i in approved.values()}:
        counts: dict[str, int] = {}
        for image in approved.values():
            if image.source_dataset == dataset:
                counts[image.name[:4]] = counts.get(image.name[:4], 0) + 1
        expected = assign_folds(counts)
        assert all(int(fold_of[n]) == expected[p] + 1 for n, p, _ in splits if p in counts)


def test_an_export_of_bus_review_images_only_has_no_sources_csv(sample_dir, tmp_path):
    call_command("import_dataset", str(sample_dir), stdout=io.StringIO(), stderr=io.StringIO())
    out = tmp_path / "e.zip"
    with out.open("wb") as fh:
        write_zip(fh, ExportOptions(formats=["bus-uclm"]))
    assert "sources.csv" not in zipfile.ZipFile(out).namelist()
