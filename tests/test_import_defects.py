"""Import defects of issue 7: unreadable masks, orientation tags, damaged ZIP members, INFO.csv
encodings and separators, non-ASCII digits, stretched masks, and the debug query log."""

from __future__ import annotations

import io
import zipfile
import zlib

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, reset_queries
from rest_framework.test import APIClient

from annotator import bulk, importing
from annotator.models import Image, ImageData, MaskLayer, Status
from annotator.permissions import ANNOTATOR, CURATOR
from tests.factories import make_user, png_bytes, run_import, write_dataset

pytestmark = pytest.mark.django_db

HEADER = "Image;Resolution;Label;Doppler;Marks;Combined\n"
W, H = 96, 64


# --- helpers ----------------------------------------------------------------------------------


def png(array: np.ndarray, orientation: int | None = None) -> bytes:
    img = PIL.Image.fromarray(array)  # uint16 gray -> a 16-bit grayscale PNG (mode I;16)
    extra = {}
    if orientation is not None:
        exif = PIL.Image.Exif()
        exif[importing.ORIENTATION_TAG] = orientation
        extra["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, format="PNG", **extra)
    return buf.getvalue()


def png16(rgb16: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one; OpenCV can)."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb16[..., ::-1]))
    assert ok
    return data.tobytes()


def blob_mask(colour=(255, 0, 0)) -> np.ndarray:
    mask = np.zeros((H, W, 3), np.uint8)
    mask[20:40, 30:60] = colour
    return mask


def import_mask(tmp_path, mask_png: bytes, *args) -> tuple[Image, str]:
    output = run_import(
        write_dataset(tmp_path / "ds", {"MASK_000.png": png_bytes()}, {"MASK_000.png": mask_png}), *args
    )
    return Image.objects.get(name="MASK_000.png"), output


# --- defect 4: a mask without the convention's colours is never a Normal consensus -----------


@pytest.mark.parametrize(
    "mask_png, hint",
    [
        (png((blob_mask()[..., 0] > 0).astype(np.uint8) * 255), "8-bit grayscale"),  # the common 0/255 mask
        (png(blob_mask()[..., 0] > 0), "1-bit grayscale"),
        (png((blob_mask()[..., 0] > 0).astype(np.uint16) * 255), "16-bit grayscale"),
        (png((blob_mask()[..., 0] > 0).astype(np.uint16) * 65535), "16-bit grayscale"),
        (png16(blob_mask().astype(np.uint16)), "neither black, red nor green"),  # 255 in 16 bits: not red
    ],
    ids=["binary-0-255", "1-bit", "16-bit-gray-255", "16-bit-gray-65535", "16-bit-rgb-low-byte"],
)
def test_a_mask_without_red_or_green_is_not_read_and_the_image_waits_to_be_drawn(tmp_path, mask_png, hint):
    """Before: Pillow read these as all black (or gray) and the image became an approved Normal."""
    image, output = import_mask(tmp_path, mask_png)
    assert image.status == Status.NEW and image.consensus is None and not image.layers.exists()
    assert "600 pixels are neither black, red nor green" in output and hint in output
    assert "no lesion in red or green -> mask not read (never a Normal consensus)" in output


def test_a_palette_mask_with_impure_colours_is_not_read(tmp_path):
    palette_mask = PIL.Image.fromarray(blob_mask((254, 0, 0))).convert("P", palette=PIL.Image.Palette.ADAPTIVE)
    buf = io.BytesIO()
    palette_mask.save(buf, format="PNG")
    image, output = import_mask(tmp_path, buf.getvalue())
    assert image.status == Status.NEW and not image.layers.exists()
    assert "mask not read" in output


def test_a_palette_mask_in_the_conventions_colours_is_read_normally(tmp_path):
    mask = blob_mask()
    mask[45:55, 5:15] = (0, 255, 0)
    palette_mask = PIL.Image.fromarray(mask).convert("P", palette=PIL.Image.Palette.ADAPTIVE, colors=4)
    buf = io.BytesIO()
    palette_mask.save(buf, format="PNG")
    image, output = import_mask(tmp_path, buf.getvalue())
    assert "defects 0" in output
    assert image.status == Status.APPROVED
    assert sorted(image.consensus.lesions.values_list("label", flat=True)) == ["benign", "malignant"]


def test_a_16_bit_rgb_mask_in_the_conventions_colours_is_read_exactly(tmp_path):
    mask16 = blob_mask().astype(np.uint16) * 257  # 255 -> 65535, the exact 16-bit level
    image, output = import_mask(tmp_path, png16(mask16))
    assert "defects 0" in output
    assert image.status == Status.APPROVED
    assert list(image.consensus.lesions.values_list("label", flat=True)) == ["malignant"]


def test_a_mask_of_specks_only_is_not_read(tmp_path):
    mask = np.zeros((H, W, 3), np.uint8)
    mask[10, 10] = mask[30, 50] = (0, 255, 0)
    image, output = import_mask(tmp_path, png(mask))
    assert image.status == Status.NEW and not image.layers.exists()
    assert "2 red or green specks too thin to outline; no lesion in red or green -> mask not read" in output


@pytest.mark.parametrize("flaw", ["off-colour", "speck"])
def test_a_mask_with_lesions_and_a_flaw_goes_to_review_not_to_approval(tmp_path, flaw):
    mask = blob_mask()
    mask[5, 5] = (200, 200, 0) if flaw == "off-colour" else (0, 255, 0)
    image, output = import_mask(tmp_path, png(mask))
    assert image.status == Status.SUBMITTED and image.consensus is None
    layer = image.layers.get()
    assert layer.status == "submitted" and list(layer.lesions.values_list("label", flat=True)) == ["malignant"]
    assert "masks/MASK_000.png: not approved as imported: " in output
    assert "-> layer imported for review (submitted)" in output


def test_a_flawed_mask_imported_as_draft_stays_a_draft(tmp_path):
    make_user("alice", ANNOTATOR)
    mask = blob_mask()
    mask[5, 5] = (200, 200, 0)
    image, _ = import_mask(tmp_path, png(mask), "--as", "draft", "--annotator", "alice")
    assert image.status == Status.DRAFT and image.layers.get().author.username == "alice"


def test_a_mask_with_more_lesions_than_the_limit_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "MAX_LESIONS", 10)
    mask = np.zeros((H, W, 3), np.uint8)
    for y in range(2, 62, 5):
        for x in range(2, 92, 5):
            mask[y : y + 2, x : x + 2] = (255, 0, 0)  # 12 x 18 squares of 2x2 px, each a lesion
    image, output = import_mask(tmp_path, png(mask))
    assert image.status == Status.NEW and not image.layers.exists()
    assert "216 lesions; at most 10 per image -> mask not read" in output


def test_the_lesion_limit_is_the_workflows():
    from annotator import workflow

    assert importing.MAX_LESIONS == workflow.MAX_LESIONS == 500


# --- defect 10: a mask of another size is stretched, so it is only ever a proposal -----------


@pytest.mark.parametrize("as_status", ["approved", "submitted"])
def test_a_mask_of_another_size_is_imported_for_review(tmp_path, as_status):
    small = np.zeros((H // 2, W // 2, 3), np.uint8)
    small[10:20, 15:30] = (0, 255, 0)
    image, output = import_mask(tmp_path, png(small), "--as", as_status)
    assert image.status == Status.SUBMITTED and image.consensus is None
    assert image.layers.get().lesions.get().label == "benign"
    assert "mask is 48x32 but the image is 96x64 -> mask resized to the image size (nearest neighbour)" in output
    if as_status == "approved":
        assert "not approved as imported: mask is 48x32 but the image is 96x64: stretched" in output


def test_a_mask_of_another_size_imported_as_draft_stays_a_draft(tmp_path):
    make_user("alice", ANNOTATOR)
    image, _ = import_mask(tmp_path, png(np.zeros((10, 10, 3), np.uint8)), "--as", "draft", "--annotator", "alice")
    assert image.status == Status.DRAFT


# --- defect 5: orientation tags --------------------------------------------------------------


def marked_scan(width: int = W, height: int = H) -> np.ndarray:
    """An asymmetric grayscale-looking RGB scan with a red marker near the top-left corner."""
    yy, xx = np.mgrid[:height, :width]
    rgb = np.stack([(xx * 2) % 256, (yy * 3) % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    rgb[3:9, 5:15] = (255, 0, 0)
    return rgb


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_an_oriented_png_is_stored_upright_without_the_tag(tmp_path, orientation):
    original = png(marked_scan(), orientation=orientation)
    output = run_import(write_dataset(tmp_path / "ds", {"TURN_000.png": original}))
    image = Image.objects.get(name="TURN_000.png")
    stored = bytes(ImageData.objects.get(image=image).png)
    assert b"eXIf" not in stored
    with PIL.Image.open(io.BytesIO(stored)) as decoded:
        assert decoded.getexif().get(importing.ORIENTATION_TAG) is None
        pixels = np.asarray(decoded.convert("RGB"))
    upright = np.asarray(PIL.ImageOps.exif_transpose(PIL.Image.open(io.BytesIO(original))).convert("RGB"))
    assert np.array_equal(pixels, upright)
    assert (image.width, image.height) == (upright.shape[1], upright.shape[0])
    assert f"TURN_000.png: PNG orientation tag {orientation}" in output
    # The same file again is recognised by the checksum of the file as given.
    assert "imported 0, unchanged 1" in run_import(tmp_path / "ds")


def test_a_mask_with_its_images_orientation_is_turned_with_it_and_approved(tmp_path):
    mask = blob_mask()
    image, output = import_mask_pair(tmp_path, png(mask, orientation=6))
    assert image.status == Status.APPROVED
    assert consensus_pixels(image) == upright_pixels(mask, 6)


def test_an_untagged_mask_on_the_stored_grid_is_turned_like_its_image_and_reviewed(tmp_path):
    mask = blob_mask()
    image, output = import_mask_pair(tmp_path, png(mask))
    assert image.status == Status.SUBMITTED
    assert "mask has orientation tag 1 but its image 6 (1: none) -> mask turned 90° clockwise like its image" in output
    assert {tuple(p) for p in image.layers.get().lesions.get().points} == upright_corners(mask, 6)


def test_a_tagged_mask_of_an_untagged_image_that_fits_only_as_stored_is_used_as_stored_and_reviewed(tmp_path):
    mask = blob_mask()
    images = {"TURN_000.png": png(marked_scan())}
    output = run_import(write_dataset(tmp_path / "ds", images, {"TURN_000.png": png(mask, orientation=6)}))
    image = Image.objects.get(name="TURN_000.png")
    assert image.status == Status.SUBMITTED and (image.width, image.height) == (W, H)
    assert "mask has orientation tag 6 but its image 1 (1: none) -> mask used as the file stores it" in output
    assert {tuple(p) for p in image.layers.get().lesions.get().points} == {
        (30.0, 20.0),
        (59.0, 20.0),
        (59.0, 39.0),
        (30.0, 39.0),
    }


def import_mask_pair(tmp_path, mask_png: bytes) -> tuple[Image, str]:
    images = {"TURN_000.png": png(marked_scan(), orientation=6)}
    output = run_import(write_dataset(tmp_path / "ds", images, {"TURN_000.png": mask_png}))
    return Image.objects.get(name="TURN_000.png"), output


def upright_pixels(mask: np.ndarray, orientation: int) -> set[tuple[int, int]]:
    turned = np.asarray(PIL.Image.fromarray(mask).transpose(importing.TRANSPOSE[orientation]))
    ys, xs = np.nonzero(turned[..., 0])
    return set(zip(xs.tolist(), ys.tolist(), strict=True))


def upright_corners(mask: np.ndarray, orientation: int) -> set[tuple[float, float]]:
    xs, ys = zip(*upright_pixels(mask, orientation), strict=True)
    return {(float(x), float(y)) for x in (min(xs), max(xs)) for y in (min(ys), max(ys))}


def consensus_pixels(image: Image) -> set[tuple[int, int]]:
    from annotator import geometry

    lesion = image.consensus.lesions.get()
    painted = geometry.lesion_mask(
        geometry.Lesion(lesion.label, lesion.points, lesion.holes), image.width, image.height
    )
    ys, xs = np.nonzero(painted)
    return set(zip(xs.tolist(), ys.tolist(), strict=True))


def test_an_image_whose_orientation_cannot_be_read_is_refused(tmp_path):
    """Browsers might turn it or not: the import cannot know which grid a reader would see."""
    data = png(marked_scan())
    payload = b"\xff" * 8  # not a TIFF header
    chunk = len(payload).to_bytes(4, "big") + b"eXIf" + payload + zlib.crc32(b"eXIf" + payload).to_bytes(4, "big")
    at = data.index(b"IDAT") - 4
    output = run_import(write_dataset(tmp_path / "ds", {"TURN_000.png": data[:at] + chunk + data[at:]}))
    assert "TURN_000.png: unreadable EXIF metadata, so its orientation is unknown" in output
    assert "-> skipped" in output and not Image.objects.exists()


# --- defect 8: damaged ZIP members, INFO.csv, image names ------------------------------------


def zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def damage(archive: bytes, member: str, how: str) -> bytes:
    """Flip a data byte of ``member`` (bad CRC) or set its 'encrypted' flag in both headers."""
    out = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = zf.getinfo(member)
    local = info.header_offset  # local file header: flags at +6, name and extra lengths at +26, +28
    if how == "crc":
        name_len = int.from_bytes(out[local + 26 : local + 28], "little")
        extra_len = int.from_bytes(out[local + 28 : local + 30], "little")
        out[local + 30 + name_len + extra_len + 5] ^= 0xFF
        return bytes(out)
    out[local + 6] |= 0x01
    central = out.index(b"PK\x01\x02")  # central directory entries: flags at +8, name at +46
    while out[central + 46 : central + 46 + len(member)] != member.encode():
        central = out.index(b"PK\x01\x02", central + 4)
    out[central + 8] |= 0x01
    return bytes(out)


INFO = (HEADER + "GOOD_000.png;96x64;Normal;Yes;No;No\nGOOD_001.png;96x64;Normal;No;Yes;No\n").encode()


@pytest.mark.parametrize("how", ["crc", "encrypted"])
def test_a_damaged_or_encrypted_zip_member_is_a_defect_of_that_file(tmp_path, how):
    mask = png(blob_mask())
    members = {
        "ds/images/GOOD_000.png": png_bytes(seed=1),
        "ds/images/GOOD_001.png": png_bytes(seed=2),
        "ds/masks/GOOD_000.png": mask,
        "ds/masks/GOOD_001.png": mask,
        "ds/INFO.csv": INFO,
    }
    archive = tmp_path / "ds.zip"
    archive.write_bytes(damage(damage(zip_with(members), "ds/masks/GOOD_001.png", how), "ds/INFO.csv", how))
    output = run_import(archive)
    assert "imported 2, unchanged 0, failed 0" in output
    problem = "encrypted ZIP member" if how == "encrypted" else "damaged or unreadable ZIP member"
    assert f"masks/GOOD_001.png: {problem}" in output and "-> imported without a layer (status new)" in output
    assert f"ds/INFO.csv: {problem}" in output and "-> INFO.csv ignored" in output
    assert Image.objects.get(name="GOOD_000.png").status == Status.APPROVED
    assert Image.objects.get(name="GOOD_001.png").status == Status.NEW


def test_a_damaged_zip_image_is_skipped_and_the_rest_imported(tmp_path):
    members = {"ds/images/GOOD_000.png": png_bytes(seed=1), "ds/images/GOOD_001.png": png_bytes(seed=2)}
    archive = tmp_path / "ds.zip"
    archive.write_bytes(damage(zip_with(members), "ds/images/GOOD_000.png", "crc"))
    output = run_import(archive)
    assert "GOOD_000.png: damaged or unreadable ZIP member (Bad CRC-32" in output
    assert list(Image.objects.values_list("name", flat=True)) == ["GOOD_001.png"]


def huge_field_csv() -> bytes:
    return (HEADER + "GOOD_000.png;96x64;Normal;Yes;No;No\n" + "x" * 200_000 + ";;;;;\n").encode()


def test_an_info_csv_field_past_the_csv_limit_is_a_defect_not_a_crash(tmp_path):
    output = run_import(write_dataset(tmp_path / "ds", {"GOOD_000.png": png_bytes()}, info=huge_field_csv()))
    assert "INFO.csv: line 3: not readable as CSV (field larger than field limit" in output
    assert "-> INFO.csv ignored" in output and Image.objects.filter(name="GOOD_000.png").exists()


def test_an_info_csv_field_past_the_csv_limit_is_reported_by_the_api():
    client = APIClient()
    client.force_authenticate(make_user("carol", CURATOR))
    image, info = io.BytesIO(png_bytes()), io.BytesIO(huge_field_csv())
    image.name, info.name = "GOOD_000.png", "INFO.csv"
    response = client.post("/api/import/", {"images": [image], "info_csv": info}, format="multipart")
    assert response.status_code == 200
    assert response.json()["imported"] == 1
    assert any("field larger than field limit" in d["problem"] for d in response.json()["defects"])


ROWS = [
    ["Image", "Resolution", "Label", "Doppler", "Marks", "Combined"],
    ["GOOD_000.png", "96x64", "Normal", "Sí", "No", "No"],
    ["GOOD_001.png", "96x64", "Normal", "No", "Yes", "Yes"],
]


@pytest.mark.parametrize(
    "encoding, separator, defect",
    [
        ("utf-8-sig", ";", None),
        ("utf-8", ";", None),
        ("utf-16", ";", None),  # Python writes the BOM in the machine's byte order
        ("utf-16-be", ";", None),  # with an explicit BE BOM, below
        ("cp1252", ";", "INFO.csv: not UTF-8 -> read as Windows-1252 (Latin-1)"),
        ("utf-8-sig", "\t", "INFO.csv: separator is a tab not ';' -> read with a tab"),
        ("utf-8-sig", ",", "INFO.csv: separator is ',' not ';' -> read with ','"),
        ("cp1252", "\t", "INFO.csv: not UTF-8"),
    ],
)
def test_info_csv_encodings_and_separators_are_read(tmp_path, encoding, separator, defect):
    text = "\r\n".join(separator.join(row) for row in ROWS) + "\r\n"
    info = text.encode(encoding)
    if encoding == "utf-16-be":
        info = b"\xfe\xff" + info
    images = {"GOOD_000.png": png_bytes(seed=1), "GOOD_001.png": png_bytes(seed=2)}
    output = run_import(write_dataset(tmp_path / "ds", images, info=info))
    first, second = Image.objects.get(name="GOOD_000.png"), Image.objects.get(name="GOOD_001.png")
    assert (first.doppler, first.marks, second.doppler, second.marks, second.combined) == (
        True,
        False,
        False,
        True,
        True,
    )
    assert "Doppler is 'Sí', not Yes/No -> read as Yes" in output
    if defect:
        assert defect in output
    assert "header lacks" not in output and "INFO.csv ignored" not in output


def test_utf_16_without_a_byte_order_mark_is_refused_clearly(tmp_path):
    info = "\n".join(";".join(row) for row in ROWS).encode("utf-16-le")
    output = run_import(write_dataset(tmp_path / "ds", {"GOOD_000.png": png_bytes()}, info=info))
    assert "INFO.csv: contains NUL bytes (UTF-16 without a byte-order mark?)" in output
    assert "-> INFO.csv ignored" in output and Image.objects.get().doppler is False


@pytest.mark.parametrize("name", ["AAAA_٠٠١.png", "AAAA_१२३.png", "AAAA_００１.png"])
def test_image_names_take_only_ascii_digits(tmp_path, name):
    output = run_import(write_dataset(tmp_path / "ds", {name: png_bytes()}))
    assert f"{name}: name does not follow XXXX_YYY.png" in output and not Image.objects.exists()
    with pytest.raises(ValidationError):
        Image(name=name).clean_fields(exclude=["patient", "number", "width", "height", "checksum"])


def test_an_image_name_with_a_trailing_newline_is_refused():
    assert importing.NAME_RE.match("AAAA_001.png\n") is None
    with pytest.raises(ValidationError):
        Image(name="AAAA_001.png\n").clean_fields(exclude=["patient", "number", "width", "height", "checksum"])


# --- defect 12: bulk commands keep no debug query log -----------------------------------------


def test_bulk_commands_do_not_grow_the_query_log_with_debug_on(tmp_path, settings):
    settings.DEBUG = True
    make_user("carol", CURATOR)
    mask = png(blob_mask())
    images = {f"LOGG_{i:03d}.png": png_bytes(seed=i) for i in range(3)}
    root = write_dataset(tmp_path / "ds", images, dict.fromkeys(images, mask))
    reset_queries()
    assert connection.queries_logged  # DEBUG on: every query would be kept
    run_import(root)
    call_command("export_dataset", str(tmp_path / "out.zip"), stdout=io.StringIO(), stderr=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert len(connection.queries_log) == 0
    assert Image.objects.filter(status=Status.APPROVED).count() > 3 and MaskLayer.objects.exists()


def test_the_query_log_comes_back_after_bulk_work(settings):
    settings.DEBUG = True
    reset_queries()
    list(Image.objects.all())
    with bulk.no_query_log():
        list(Image.objects.all())
    list(Image.objects.all())
    assert len(connection.queries_log) == 2
