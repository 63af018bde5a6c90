"""Import and export: the BUS-UCLM round trip on the real sample, defects, idempotence, COCO."""

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from django.core.management import CommandError, call_command
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from annotator import exporting, geometry, importing
from annotator.models import AuditEvent, Image, ImageData, MaskLayer, Patient, Status
from annotator.permissions import ANNOTATOR
from tests.factories import make_user, png_bytes, run_import, write_dataset

pytestmark = pytest.mark.django_db


def export_to(tmp_path: Path, *args) -> zipfile.ZipFile:
    out = tmp_path / "export.zip"
    call_command("export_dataset", str(out), *args, stdout=io.StringIO(), stderr=io.StringIO())
    return zipfile.ZipFile(out)


def mask_of(data: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# --- the round trip on the shared sample ------------------------------------------------------


def test_sample_round_trip_is_exact(sample_dir, tmp_path):
    """Approved as imported -> export: images, masks and INFO.csv identical to the originals."""
    out = io.StringIO()
    call_command("import_dataset", str(sample_dir), "--as", "approved", stdout=out, stderr=io.StringIO())
    assert "imported 33, unchanged 0, failed 0, defects 0" in out.getvalue()
    assert Image.objects.filter(status=Status.APPROVED).count() == 33
    assert sorted(Patient.objects.values_list("code", flat=True)) == ["CODE", "KIFO", "SECH"]
    with export_to(tmp_path) as zf:
        assert zf.read("INFO.csv") == (sample_dir / "INFO.csv").read_bytes()
        for path in sorted((sample_dir / "images").glob("*.png")):
            assert zf.read(f"images/{path.name}") == path.read_bytes()
            original = np.asarray(PIL.Image.open(sample_dir / "masks" / path.name).convert("RGB"))
            exported = np.asarray(PIL.Image.open(io.BytesIO(zf.read(f"masks/{path.name}"))))
            assert exported.shape == original.shape and exported.dtype == np.uint8
            assert np.array_equal(exported, original), path.name
        coco_doc = json.loads(zf.read("annotations/instances.json"))
    coco_path = tmp_path / "coco.json"
    coco_path.write_text(json.dumps(coco_doc))
    coco = COCO(str(coco_path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["Benign", "Malignant"]
    assert len(coco.getImgIds()) == 33
    for img in coco.loadImgs(coco.getImgIds()):
        assert (img["width"], img["height"]) == (856, 606)
        original = np.asarray(PIL.Image.open(sample_dir / "masks" / img["file_name"]).convert("RGB"))
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img["id"])):
            decoded = coco.annToMask(ann)
            assert decoded.shape == (606, 856)
            colour = (0, 255, 0) if ann["category_id"] == 1 else (255, 0, 0)
            truth = np.all(original == colour, axis=-1)
            assert geometry.dice(decoded, truth) > 0.97
            assert ann["area"] == int(truth.sum()) and ann["iscrowd"] == 0
    assert len(coco.getAnnIds()) == sum(
        1 for p in (sample_dir / "masks").glob("*.png") if np.asarray(PIL.Image.open(p)).any()
    )


def test_reimport_is_idempotent(sample_dir):
    call_command("import_dataset", str(sample_dir), stdout=io.StringIO(), stderr=io.StringIO())
    events = AuditEvent.objects.count()
    out = io.StringIO()
    call_command("import_dataset", str(sample_dir), stdout=out, stderr=io.StringIO())
    assert "imported 0, unchanged 33, failed 0" in out.getvalue()
    assert Image.objects.count() == 33 and AuditEvent.objects.count() == events


def test_import_as_submitted_puts_masks_up_for_review(sample_dir):
    call_command("import_dataset", str(sample_dir), "--as", "submitted", stdout=io.StringIO(), stderr=io.StringIO())
    assert Image.objects.filter(status=Status.SUBMITTED).count() == 33
    layer = MaskLayer.objects.get(image__name="CODE_000.png")
    assert layer.source == MaskLayer.Source.IMPORTED and layer.lesions.get().label == "malignant"
    assert MaskLayer.objects.get(image__name="CODE_002.png").is_normal is True


def test_import_as_draft_needs_an_annotator(sample_dir):
    with pytest.raises(CommandError, match="--annotator"):
        call_command("import_dataset", str(sample_dir), "--as", "draft", stdout=io.StringIO())
    make_user("alice", ANNOTATOR)
    call_command(
        "import_dataset",
        str(sample_dir),
        "--as",
        "draft",
        "--annotator",
        "alice",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert set(MaskLayer.objects.values_list("author__username", flat=True)) == {"alice"}
    assert Image.objects.filter(status=Status.DRAFT, annotator__username="alice").count() == 33


# --- defects ----------------------------------------------------------------------------------


def test_real_world_defects_are_reported_and_survived(tmp_path):
    rgb = (np.random.default_rng(1).random((64, 96, 3)) * 255).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((64, 96), 255, np.uint8)])
    small_mask = np.zeros((32, 48, 3), np.uint8)
    small_mask[5:15, 5:15] = (255, 0, 0)
    odd_mask = np.zeros((64, 96, 3), np.uint8)
    odd_mask[0:2, 0:2] = (200, 200, 0)
    root = write_dataset(
        tmp_path / "ds",
        images={
            "AAAA_000.png": png(rgba),
            "AAAA_001.png": png(rgb),
            "AAAA_002.png": b"not an image",
            "bad-name.png": png(rgb),
            "AAAA_003.png": png(rgb)[:200],
        },
        masks={"AAAA_000.png": png(small_mask), "AAAA_001.png": png(odd_mask), "ZZZZ_000.png": png(odd_mask)},
        info="Image;Resolution;Label;Doppler;Marks;Combined\n"
        "AAAA_000.png;856x606;Malignant;Y;No;No\nAAAA_001.png;96x64;Benign;No;maybe;No\n",
    )
    output = run_import(root)
    assert "imported 2, unchanged 0, failed 3" in output
    expected = [
        "AAAA_000.png: image is RGBA",
        "INFO.csv Resolution 856x606 but the image is 96x64",
        "masks/AAAA_000.png: mask is 48x32 but the image is 96x64 -> mask resized",
        "Doppler is 'Y', not Yes/No -> read as Yes",
        "Marks is 'maybe', not Yes/No -> read as No",
        "masks/AAAA_001.png: 4 pixels are neither black, red nor green; no lesion in red or green -> mask not read",
        "masks/AAAA_000.png: not approved as imported: mask is 48x32 but the image is 96x64",
        "AAAA_002.png: not an image -> skipped",
        "bad-name.png: name does not follow XXXX_YYY.png",
        "AAAA_003.png: damaged or truncated image",
        "masks/ZZZZ_000.png: mask without an image -> skipped",
    ]
    for fragment in expected:
        assert fragment in output, fragment
    first = Image.objects.get(name="AAAA_000.png")
    assert first.doppler is True and first.status == Status.SUBMITTED
    assert first.layers.get().lesions.get().label == "malignant"
    assert Image.objects.get(name="AAAA_001.png").status == Status.NEW
    # Nothing half-written for the failures.
    assert set(Image.objects.values_list("name", flat=True)) == {"AAAA_000.png", "AAAA_001.png"}
    assert ImageData.objects.count() == 2


def test_a_decompression_bomb_is_refused(tmp_path, settings):
    settings.MAX_IMAGE_PIXELS = 1_000_000
    bomb = png(np.zeros((2000, 2000, 3), np.uint8))  # small file, 4 Mpx
    root = write_dataset(tmp_path / "ds", images={"BOMB_000.png": bomb})
    output = run_import(root)
    assert "refused as a decompression bomb" in output and not Image.objects.exists()


def test_an_oversized_file_is_refused(tmp_path, settings):
    settings.MAX_IMAGE_BYTES = 1000
    root = write_dataset(tmp_path / "ds", images={"BIGG_000.png": png_bytes(200, 200)})
    assert "larger than the limit" in run_import(root) or "the limit is 1000" in run_import(root)
    assert not Image.objects.exists()


def test_a_different_image_under_an_existing_name_is_not_overwritten(tmp_path):
    run_import(write_dataset(tmp_path / "a", images={"AAAA_000.png": png_bytes(seed=1)}))
    output = run_import(write_dataset(tmp_path / "b", images={"AAAA_000.png": png_bytes(seed=2)}))
    assert "different content is already stored -> skipped" in output
    assert Image.objects.get().checksum == importing.hashlib.sha256(png_bytes(seed=1)).hexdigest()


def test_unsafe_zip_paths_are_skipped(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../images/EVIL_000.png", png_bytes())
        zf.writestr("/abs/EVIL_001.png", png_bytes())
        zf.writestr("ok/images/GOOD_000.png", png_bytes())
    output = run_import(archive)
    assert output.count("unsafe path in archive") == 2
    assert list(Image.objects.values_list("name", flat=True)) == ["GOOD_000.png"]


def test_missing_path_is_a_clear_cli_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_dataset", str(tmp_path / "nowhere"), stdout=io.StringIO())


def test_images_without_masks_stay_new(tmp_path):
    run_import(write_dataset(tmp_path / "ds", images={"AAAA_000.png": png_bytes()}))
    image = Image.objects.get()
    assert image.status == Status.NEW and not image.layers.exists()


def test_info_csv_normal_without_masks_makes_a_normal_layer(tmp_path):
    run_import(
        write_dataset(
            tmp_path / "ds",
            images={"AAAA_000.png": png_bytes()},
            info="Image;Resolution;Label;Doppler;Marks;Combined\nAAAA_000.png;96x64;Normal;No;No;Yes\n",
        )
    )
    image = Image.objects.get()
    assert image.status == Status.APPROVED and image.consensus.is_normal and image.combined


# --- export -----------------------------------------------------------------------------------


def approved_sample(sample_dir):
    call_command("import_dataset", str(sample_dir), stdout=io.StringIO(), stderr=io.StringIO())


def test_export_filters(sample_dir, tmp_path):
    approved_sample(sample_dir)
    with export_to(tmp_path, "--patient", "KIFO", "--exclude-marks", "--exclude-doppler") as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("images/"))
        rows = zf.read("INFO.csv").decode("utf-8-sig").splitlines()[1:]
    assert names == [f"images/KIFO_{i:03d}.png" for i in (0, 1, 2, 4, 6, 7, 10, 11)]
    assert [r.split(";")[0] for r in rows] == [n[7:] for n in names]


def test_export_only_holds_approved_images(sample_dir, tmp_path):
    call_command("import_dataset", str(sample_dir), "--as", "submitted", stdout=io.StringIO(), stderr=io.StringIO())
    with export_to(tmp_path) as zf:
        assert [n for n in zf.namelist() if n.startswith("images/")] == []
        assert zf.read("INFO.csv") == "\ufeffImage;Resolution;Label;Doppler;Marks;Combined\n".encode()


def test_http_stream_and_file_export_are_identical(sample_dir, tmp_path):
    approved_sample(sample_dir)
    options = exporting.ExportOptions(patients=["CODE"])
    streamed = b"".join(exporting.iter_zip(options))
    buf = io.BytesIO()
    exporting.write_zip(buf, options)
    with zipfile.ZipFile(io.BytesIO(streamed)) as a, zipfile.ZipFile(buf) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())
        assert a.testzip() is None


def test_coco_carries_holes_as_rle(tmp_path):
    mask = np.zeros((64, 96, 3), np.uint8)
    yy, xx = np.mgrid[:64, :96]
    ring = ((yy - 32) ** 2 + (xx - 40) ** 2 <= 400) & ((yy - 32) ** 2 + (xx - 40) ** 2 > 36)
    mask[ring] = (0, 255, 0)
    run_import(write_dataset(tmp_path / "ds", images={"HOLE_000.png": png_bytes()}, masks={"HOLE_000.png": png(mask)}))
    with export_to(tmp_path, "--format", "coco") as zf:
        doc = json.loads(zf.read("annotations/instances.json"))
        assert "masks/HOLE_000.png" not in zf.namelist()
    (ann,) = doc["annotations"]
    rle = coco_mask.frPyObjects(ann["segmentation"], 64, 96)
    assert np.array_equal(coco_mask.decode(rle).astype(bool), ring)
    assert ann["bbox"] == [20, 12, 41, 41]


def test_export_command_refuses_unknown_formats(tmp_path):
    with pytest.raises(CommandError, match="unknown format"):
        call_command("export_dataset", str(tmp_path / "x.zip"), "--format", "yolo")
    assert not (tmp_path / "x.zip").exists()


def test_seed_demo_creates_users_and_images_in_every_status(settings):
    settings.DEBUG = True  # pytest-django runs with DEBUG off; seed_demo is for local DEBUG set-ups
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    statuses = set(Image.objects.values_list("status", flat=True))
    assert statuses == {s.value for s in Status}
    assert "alice" in out.getvalue() and "alice-demo-2026" in out.getvalue()
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    assert Image.objects.count() == 27  # 4 patients x 6, two read blind, and one image waiting in redaction


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())


def test_sample_copy_is_left_untouched(sample_dir, tmp_path):
    """Import reads, never writes, its source."""
    copy = shutil.copytree(sample_dir, tmp_path / "copy")
    before = {p: p.read_bytes() for p in Path(copy).rglob("*") if p.is_file()}
    run_import(copy)
    assert before == {p: p.read_bytes() for p in Path(copy).rglob("*") if p.is_file()}


def test_an_optional_pixel_spacing_column_is_stored_but_not_exported(tmp_path):
    info = (
        "Image;Resolution;Label;Doppler;Marks;Combined;PixelSpacing\n"
        "AAAA_000.png;96x64;Normal;No;No;No;0,064\nAAAA_001.png;96x64;Normal;No;No;No;huge\n"
    )
    output = run_import(
        write_dataset(
            tmp_path / "ds", images={"AAAA_000.png": png_bytes(), "AAAA_001.png": png_bytes(seed=1)}, info=info
        )
    )
    assert "PixelSpacing is 'huge', not a size in mm -> no pixel spacing stored" in output
    assert Image.objects.get(name="AAAA_000.png").pixel_spacing_mm == 0.064
    assert Image.objects.get(name="AAAA_001.png").pixel_spacing_mm is None
    with export_to(tmp_path) as zf:
        assert (
            zf.read("INFO.csv").decode("utf-8-sig").splitlines()[0] == "Image;Resolution;Label;Doppler;Marks;Combined"
        )


def test_splits_keep_each_patient_in_one_fold(sample_dir, tmp_path):
    approved_sample(sample_dir)
    with export_to(tmp_path, "--format", "bus-uclm,splits") as zf:
        rows = [line.split(";") for line in zf.read("splits.csv").decode().splitlines()[1:]]
    assert len(rows) == 33
    folds_of = {}
    for name, patient, fold in rows:
        assert name.startswith(patient)
        folds_of.setdefault(patient, set()).add(fold)
    assert all(len(folds) == 1 for folds in folds_of.values())
    assert len({f for folds in folds_of.values() for f in folds}) == 3  # 3 patients, 3 distinct folds


def test_fold_assignment_balances_images():
    from annotator.exporting.splits import assign_folds

    folds = assign_folds({"AAAA": 10, "BBBB": 9, "CCCC": 5, "DDDD": 4, "EEEE": 1}, folds=2)
    load = [0, 0]
    for patient, fold in folds.items():
        load[fold] += {"AAAA": 10, "BBBB": 9, "CCCC": 5, "DDDD": 4, "EEEE": 1}[patient]
    assert sorted(load) == [14, 15]
