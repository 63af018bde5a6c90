"""DICOM import (annotator.importing.dicom): command and API, report rows, calibration, crop, frames,
re-import, patient codes, bad input, and the redaction status and endpoint."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pydicom
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom.sequence import Sequence
from rest_framework.test import APIClient

from annotator.models import AuditEvent, Image, ImageData, Patient, PatientKey, Status
from tests.dicom_samples import (
    PATIENT_ID,
    example,
    region,
    set_pixels,
    shipped_file,
    to_bytes,
    us_dataset,
)

pytestmark = pytest.mark.django_db

# The synthetic scan: a 200 x 150 grey frame whose 2D tissue region is (20, 20)-(179, 139)
# inclusive, 0.01 cm x 0.02 cm per pixel; a caption above the region and one inside it.
REGION = (20, 20, 179, 139)
CROP = (20, 20, 180, 140)


def scan_pixels(seed: int = 0, width: int = 200, height: int = 150) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = (40 + rng.integers(0, 30, (height, width))).astype(np.uint8)
    cv2.putText(pixels, "OUTSIDE TEXT", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
    cv2.putText(pixels, "INSIDE 1234", (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)
    return pixels


def synthetic(
    *,
    sop_uid: str | None = None,
    patient_id: str | None = None,
    acquisition_time: str | None = None,
    frames: int = 1,
    modality: str = "US",
    seed: int = 0,
) -> bytes:
    """A US file carrying every identifying string of tests.dicom_samples (see IDENTIFYING)."""
    ds = us_dataset(scan_pixels(seed))
    ds.SequenceOfUltrasoundRegions = Sequence([region(*REGION, 0.01, 0.02)])
    ds.Modality = modality
    if sop_uid:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    if patient_id:
        ds.PatientID = patient_id
    if acquisition_time:
        ds.AcquisitionTime = acquisition_time
        ds.AcquisitionDateTime = ds.AcquisitionDate + acquisition_time
    if frames > 1:
        stack = np.stack([scan_pixels(seed + i) for i in range(frames)])
        set_pixels(ds, stack, frames=frames)
    return to_bytes(ds)


def run_import(path: Path, *args: str) -> str:
    out = io.StringIO()
    try:
        call_command("import_dataset", str(path), *args, stdout=out, stderr=io.StringIO())
    except CommandError as e:
        out.write(f"ERROR {e}")
    return out.getvalue()


def folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "in"
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def stored_rgb(image: Image) -> np.ndarray:
    png = bytes(ImageData.objects.get(image=image).png)
    decoded = PIL.Image.open(io.BytesIO(png))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    return np.asarray(decoded)


def nothing_stored() -> bool:
    return not (
        Patient.objects.exists()
        or Image.objects.exists()
        or ImageData.objects.exists()
        or PatientKey.objects.exists()
        or AuditEvent.objects.exists()
    )


# --- import by command: calibration, crop, status, naming ------------------------------------------


def test_command_imports_a_synthetic_scan_cropped_calibrated_and_waiting_for_redaction(tmp_path):
    output = run_import(folder(tmp_path, {"scan": synthetic()}))  # no extension: found by content
    image = Image.objects.get()
    assert re.fullmatch(r"[A-Z]{4}_000\.png", image.name) and image.number == 0
    assert image.status == Status.REDACTION
    assert (image.width, image.height) == (160, 120)
    assert (image.crop_x, image.crop_y) == (20, 20)
    assert image.pixel_spacing_x_mm == pytest.approx(0.1) and image.pixel_spacing_y_mm == pytest.approx(0.2)
    assert image.pixel_spacing_mm == pytest.approx((0.1 * 0.2) ** 0.5)  # the geometric mean
    assert image.spacing_source == "ultrasound region"
    assert image.acquisition["manufacturer_model"] == "Sono 3000" and image.acquisition["frame_count"] == 1
    assert image.text_boxes and all(set(box) >= {"x", "y", "w", "h"} for box in image.text_boxes)
    rgb = stored_rgb(image)
    assert rgb.shape == (120, 160, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()  # grey stays grey
    assert image.doppler is False
    assert f"scan: imported as {image.name}; frame(s) 1 of 1; 0.1 x 0.2 mm/px from ultrasound region" in output
    assert f"crop [{', '.join(map(str, CROP))}]" in output


@pytest.mark.parametrize("name", ["gdcm-US-ALOKA-16.dcm", "OBXXXX1A.dcm"])
def test_calibration_is_stored_in_mm_from_the_files_own_region_values(tmp_path, name):
    data = shipped_file(name)
    run_import(folder(tmp_path, {name: data}))
    image = Image.objects.get()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    # The region the image was cropped to, read here with pydicom alone.
    (item,) = [
        r
        for r in ds.SequenceOfUltrasoundRegions
        if (r.RegionLocationMinX0, r.RegionLocationMinY0) == (image.crop_x, image.crop_y) and r.RegionSpatialFormat == 1
    ]
    assert (item.PhysicalUnitsXDirection, item.PhysicalUnitsYDirection) == (3, 3)  # centimetres
    assert image.pixel_spacing_x_mm == pytest.approx(float(item.PhysicalDeltaX) * 10)
    assert image.pixel_spacing_y_mm == pytest.approx(float(item.PhysicalDeltaY) * 10)
    # scanners write Max X1 = Columns (one past the last pixel): the crop stops at the image's edge
    assert image.width == min(item.RegionLocationMaxX1 + 1, ds.Columns) - item.RegionLocationMinX0
    assert image.height == min(item.RegionLocationMaxY1 + 1, ds.Rows) - item.RegionLocationMinY0


def test_a_colour_doppler_file_gets_the_doppler_flag_suggested(tmp_path):
    output = run_import(folder(tmp_path, {"us1.dcm": shipped_file("US1_UNCR.dcm")}))
    image = Image.objects.get()
    assert image.doppler is True and "Doppler suggested" in output
    assert image.spacing_source == "none" and image.pixel_spacing_mm is None and image.crop_x is None


# --- frames ---------------------------------------------------------------------------------------


def test_a_cine_file_imports_its_key_frame_by_default_and_reports_the_frame_count(tmp_path):
    output = run_import(folder(tmp_path, {"cine.dcm": example("ybr_color")}))
    image = Image.objects.get()
    assert image.source_frame == 14 and image.acquisition["frame_index"] == 14
    assert "frame(s) 15 of 30" in output


def test_listed_frames_become_images_numbered_in_frame_order(tmp_path):
    output = run_import(folder(tmp_path, {"cine.dcm": synthetic(frames=3)}), "--frames", "3,1")
    images = list(Image.objects.order_by("number"))
    assert [im.source_frame for im in images] == [0, 2]
    assert [im.number for im in images] == [0, 1]
    assert "frame(s) 1,3 of 3" in output


def test_all_frames_only_when_asked(tmp_path):
    run_import(folder(tmp_path, {"cine.dcm": synthetic(frames=3)}), "--frames", "all")
    assert sorted(Image.objects.values_list("source_frame", flat=True)) == [0, 1, 2]


def test_a_frame_the_file_does_not_have_is_a_clear_error_and_nothing_is_stored(tmp_path):
    output = run_import(folder(tmp_path, {"cine.dcm": synthetic(frames=3)}), "--frames", "2,5")
    assert "cine.dcm: failed: There is no frame 5: the file has 3 frame(s)" in output
    assert nothing_stored()


# --- re-import and patients -----------------------------------------------------------------------


def test_the_same_sop_instance_imported_again_is_reported_unchanged(tmp_path):
    root = folder(tmp_path, {"a.dcm": synthetic()})
    run_import(root)
    output = run_import(root)
    assert Image.objects.count() == 1
    name = Image.objects.get().name
    assert f"a.dcm: unchanged as {name}" in output and "imported 0, unchanged 1" in output
    # the UID itself is not what is stored
    assert pydicom.dcmread(root / "a.dcm").SOPInstanceUID not in Image.objects.get().source_key


def imported_name(output: str) -> str:
    return re.search(r"imported as ([A-Z]{4}_[0-9]{3}\.png)", output).group(1)


def test_the_same_patient_gets_the_same_code_across_imports_and_numbers_follow(tmp_path):
    first = imported_name(run_import(folder(tmp_path / "one", {"a.dcm": synthetic(sop_uid="1.2.3.4.1")})))
    again = imported_name(run_import(folder(tmp_path / "two", {"b.dcm": synthetic(sop_uid="1.2.3.4.2", seed=5)})))
    other = synthetic(sop_uid="1.2.3.4.3", patient_id="SOMEONE-ELSE-77")
    stranger = imported_name(run_import(folder(tmp_path / "three", {"c.dcm": other})))
    assert first.endswith("_000.png") and again == first[:4] + "_001.png"
    assert stranger[:4] != first[:4] and stranger.endswith("_000.png")
    assert Patient.objects.count() == 2 and PatientKey.objects.count() == 2
    assert all(PATIENT_ID not in k.key for k in PatientKey.objects.all())


def test_a_patients_images_are_numbered_in_acquisition_order_not_file_order(tmp_path):
    files = {
        "a_late.dcm": synthetic(sop_uid="1.2.3.9.1", acquisition_time="150000"),
        "b_early.dcm": synthetic(sop_uid="1.2.3.9.2", acquisition_time="090000"),
    }
    output = run_import(folder(tmp_path, files))
    (code,) = Patient.objects.values_list("code", flat=True)
    assert f"b_early.dcm: imported as {code}_000.png" in output
    assert f"a_late.dcm: imported as {code}_001.png" in output


# --- the API and the page ------------------------------------------------------------------------


def dicom_zip(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    buf.seek(0)
    buf.name = "dicom.zip"
    return buf


def test_api_imports_a_zip_of_dicom_files_with_a_row_per_file(carol):
    client = APIClient()
    client.force_authenticate(carol)
    upload = dicom_zip({"study/one.dcm": synthetic(), "study/cine.dcm": example("ybr_color"), "bad.dcm": b"x" * 300})
    response = client.post("/api/import/", {"archive": upload, "frames": "key"}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["imported"] == 2 and body["failed"] == 1
    rows = {row["file"]: row for row in body["files"]}
    assert rows["bad.dcm"]["outcome"] == "failed" and rows["bad.dcm"]["error"] == "This is not a DICOM file."
    one = rows["study/one.dcm"]
    assert one["outcome"] == "imported" and one["frames"] == [1] and one["frame_count"] == 1
    assert one["spacing_x_mm"] == pytest.approx(0.1) and one["spacing_source"] == "ultrasound region"
    assert one["crop"] == list(CROP) and one["text_boxes"] >= 1
    assert Image.objects.get(name=one["images"][0]).status == Status.REDACTION
    assert rows["study/cine.dcm"]["frames"] == [15] and rows["study/cine.dcm"]["frame_count"] == 30


def test_api_refuses_a_bad_frames_option_with_a_400(carol):
    client = APIClient()
    client.force_authenticate(carol)
    response = client.post(
        "/api/import/", {"archive": dicom_zip({"a.dcm": synthetic()}), "frames": "1,x"}, format="multipart"
    )
    assert response.status_code == 400 and "frames" in response.json()["detail"]
    assert nothing_stored()


def test_uploaded_dicom_files_are_imported_from_the_page(carol, client):
    client.force_login(carol)
    upload = io.BytesIO(synthetic())
    upload.name = "scan.dcm"
    response = client.post("/dataset/import/", {"images": [upload], "as_status": "approved", "frames": "key"})
    assert response.status_code == 200
    assert b'id="dicom-report"' in response.content and b"scan.dcm" in response.content, response.content.decode()[
        -3000:
    ]
    text = response.content.decode()
    assert Image.objects.count() == 1, text[text.index('id="import-report"') :]
    assert Image.objects.get().status == Status.REDACTION


# --- bad input: a clear error per file, nothing left behind ----------------------------------------


def sr_file() -> bytes:
    ds = us_dataset()
    del ds.PixelData
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    ds.Modality = "SR"
    return to_bytes(ds)


def truncated() -> bytes:
    data = synthetic()
    return data[: len(data) - 5000]


BAD_INPUT = {
    "not DICOM though named .dcm": (lambda: b"hello, not dicom" * 20, "This is not a DICOM file."),
    "no pixel data": (sr_file, "Pixel Data"),
    "not ultrasound": (lambda: synthetic(modality="MG"), "is not ultrasound (US)"),
    "truncated": (truncated, "truncated"),
    "too many frames": (lambda: synthetic(frames=3), "The file has 3 frames; the limit is 2."),
    "a DICOMDIR": (lambda: example("dicomdir"), "DICOMDIR"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_a_clear_error_for_that_file_and_leaves_nothing(case, tmp_path, settings):
    settings.DICOM_MAX_FRAMES = 2
    make, message = BAD_INPUT[case]
    output = run_import(folder(tmp_path, {"bad.dcm": make()}))
    assert "bad.dcm: failed: " in output and message in output
    assert "ERROR nothing could be imported" in output
    assert nothing_stored()


def test_a_frame_past_the_pixel_limit_is_refused_and_leaves_nothing(tmp_path, settings):
    settings.MAX_IMAGE_PIXELS = 100 * 100
    output = run_import(folder(tmp_path, {"big.dcm": synthetic()}))
    assert "big.dcm: failed: A frame of 200 x 150 pixels exceeds the limit of 10000." in output
    assert nothing_stored()


def test_another_modality_is_imported_when_the_curator_allows_it(tmp_path):
    output = run_import(folder(tmp_path, {"mg.dcm": synthetic(modality="MG")}), "--allow-modality", "MG")
    assert "mg.dcm: imported as" in output and Image.objects.count() == 1


def test_without_a_patient_key_secret_dicom_import_is_refused_and_nothing_is_written(tmp_path, settings):
    settings.PATIENT_KEY_SECRET = ""
    output = run_import(folder(tmp_path, {"a.dcm": synthetic()}))
    assert "ERROR DICOM import is refused: PATIENT_KEY_SECRET is not set" in output
    assert nothing_stored()


def test_the_api_refuses_dicom_without_a_secret_with_a_400(carol, settings):
    settings.PATIENT_KEY_SECRET = ""
    client = APIClient()
    client.force_authenticate(carol)
    response = client.post("/api/import/", {"archive": dicom_zip({"a.dcm": synthetic()})}, format="multipart")
    assert response.status_code == 400 and "PATIENT_KEY_SECRET" in response.json()["detail"]
    assert not Image.objects.exists()


# --- the redaction status and endpoint -------------------------------------------------------------


@pytest.fixture
def waiting(tmp_path, alice):
    """One synthetic scan imported and assigned to alice, waiting in redaction."""
    run_import(folder(tmp_path, {"a.dcm": synthetic()}), "--annotator", "alice")
    return Image.objects.get()


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_annotators_and_reviewers_never_see_an_image_in_redaction(waiting, alice, bob):
    assert waiting.annotator == alice
    for user in (alice, bob):
        client = api(user)
        assert client.get("/api/images/").json()["results"] == []
        assert client.get(f"/api/images/{waiting.pk}/").status_code == 404
        assert client.get(f"/api/images/{waiting.pk}/image.png").status_code == 404
    assert api(alice).get("/api/my-images/next/").json().get("id") != waiting.pk


def test_a_curator_confirms_boxes_the_stored_pixels_are_black_there_and_the_image_is_released(waiting, carol, alice):
    box = {"x": 10, "y": 15, "w": 40, "h": 20}
    response = api(carol).post(f"/api/images/{waiting.pk}/redact/", {"boxes": [box]}, format="json")
    assert response.status_code == 200 and response.json()["released"] == [waiting.name]
    waiting.refresh_from_db()
    assert waiting.status == Status.NEW and waiting.text_boxes == []
    rgb = stored_rgb(waiting)
    assert (rgb[15:35, 10:50] == 0).all()
    assert rgb[60:100, 60:100].any()  # the rest is kept
    event = AuditEvent.objects.filter(action="confirm_redaction").get()
    assert (event.from_status, event.to_status, event.actor) == ("redaction", "new", carol)
    assert api(alice).get(f"/api/images/{waiting.pk}/").status_code == 200  # now the reader sees it


def test_apply_to_group_redacts_every_waiting_image_of_the_same_scanner_and_size(tmp_path, carol):
    files = {"a.dcm": synthetic(sop_uid="1.2.5.1"), "b.dcm": synthetic(sop_uid="1.2.5.2", seed=3)}
    run_import(folder(tmp_path, files))
    first, second = Image.objects.order_by("number")
    box = {"x": 0, "y": 0, "w": 30, "h": 10}
    body = {"boxes": [box], "apply_to_group": True}
    response = api(carol).post(f"/api/images/{first.pk}/redact/", body, format="json")
    assert sorted(response.json()["released"]) == sorted([first.name, second.name])
    for image in (first, second):
        image.refresh_from_db()
        assert image.status == Status.NEW and (stored_rgb(image)[0:10, 0:30] == 0).all()


def test_readers_may_not_redact(waiting, alice, bob):
    for user in (alice, bob):
        response = api(user).post(f"/api/images/{waiting.pk}/redact/", {"boxes": []}, format="json")
        assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == Status.REDACTION


@pytest.mark.parametrize(
    "boxes",
    [
        "not a list",
        [{"x": 0, "y": 0, "w": 10}],
        [{"x": 150, "y": 0, "w": 20, "h": 5}],  # past the 160 px width
        [{"x": 0, "y": 0, "w": -1, "h": 5}],
        [{"x": True, "y": 0, "w": 1, "h": 5}],
    ],
)
def test_bad_boxes_are_a_400_and_change_nothing(waiting, carol, boxes):
    before = bytes(ImageData.objects.get(image=waiting).png)
    response = api(carol).post(f"/api/images/{waiting.pk}/redact/", {"boxes": boxes}, format="json")
    assert response.status_code == 400
    waiting.refresh_from_db()
    assert waiting.status == Status.REDACTION and bytes(ImageData.objects.get(image=waiting).png) == before


def test_redacting_an_image_not_in_redaction_is_a_409(carol, image_in):
    image = image_in("new")
    response = api(carol).post(f"/api/images/{image.pk}/redact/", {"boxes": []}, format="json")
    assert response.status_code == 409


def test_png_imports_skip_the_redaction_step(tmp_path):
    from tests.factories import png_bytes

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "PNGS_000.png").write_bytes(png_bytes())
    run_import(tmp_path)
    assert Image.objects.get().status == Status.NEW


def test_a_mixed_source_imports_pngs_and_dicom_together(tmp_path):
    from tests.factories import png_bytes

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "PNGS_000.png").write_bytes(png_bytes())
    (tmp_path / "scan.dcm").write_bytes(synthetic())
    output = run_import(tmp_path)
    assert "imported 2" in output
    assert set(Image.objects.values_list("status", flat=True)) == {Status.NEW, Status.REDACTION}


def settings_value(env: dict[str, str], name: str) -> subprocess.CompletedProcess:
    code = f"import busreview.settings as s; print(repr(s.{name}))"
    full = {k: v for k, v in os.environ.items() if k != "PATIENT_KEY_SECRET"} | env
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


def test_settings_have_no_patient_key_without_debug_and_refuse_a_short_one():
    production = {"DEBUG": "0", "SECRET_KEY": "s" * 50}
    assert settings_value(production, "PATIENT_KEY_SECRET").stdout.strip() == "''"  # so DICOM import is refused
    short = settings_value({**production, "PATIENT_KEY_SECRET": "short"}, "PATIENT_KEY_SECRET")
    assert short.returncode != 0 and "PATIENT_KEY_SECRET must be at least 16 bytes" in short.stderr
    assert settings_value({"DEBUG": "1"}, "PATIENT_KEY_SECRET").stdout.strip() != "''"  # the dev default
