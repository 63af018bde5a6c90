"""annotator.redaction: crop to the ultrasound regions, find burned-in text, black it out.

The images are synthetic B-mode scans (correlated Rayleigh speckle, a dark oval lesion, bright
specular lines) with known text drawn by OpenCV at known places, so the ink of every line is known
to the pixel; and the real burned-in files of the ``pydicom-data`` wheel. tesseract is the real
Debian binary (scripts/test installs it); nothing is downloaded.
"""

from __future__ import annotations

import math
import shutil

import cv2
import numpy as np
import pytest

from annotator import redaction
from annotator.redaction import Box, TextDetectionUnavailable

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="Debian's tesseract-ocr is not installed (scripts/test installs it)"
)

WIDTH, HEIGHT = 856, 606
# The tissue region as DICOM's RegionLocation* would give it (inclusive bounds).
TISSUE = (120, 60, 735, 545)
# (text, bottom-left origin, font scale, RGB colour): a name and ID and a date in the header band,
# a hospital in yellow in the footer, and settings and a name inside the tissue region.
OUTSIDE = [
    ("SMITH^JOHN 12345678", (20, 30), 0.6, (255, 255, 255)),
    ("2024-03-05", (650, 30), 0.6, (255, 255, 255)),
    ("HOSPITAL X", (360, 580), 0.5, (230, 230, 0)),
]
INSIDE = [
    ("Gn 60 DR 70", (200, 200), 0.5, (255, 255, 255)),
    ("DOE JANE", (520, 480), 0.55, (200, 200, 200)),
]


def scan(
    seed: int,
    width: int = WIDTH,
    height: int = HEIGHT,
    scale: float = 45,
    blur: float = 1.2,
    avoid: np.ndarray | None = None,
) -> np.ndarray:
    """A B-mode-like grey RGB image: speckle that fades with depth, a dark lesion, bright echoes.

    Echoes that would touch ``avoid`` (a mask, grown by a few pixels) are left out: an echo drawn
    across a caption fuses with its letters, the one case ``find_text`` is known to miss (README).
    """
    rng = np.random.default_rng(seed)
    speckle = cv2.GaussianBlur(rng.rayleigh(scale=scale, size=(height, width)), (0, 0), blur)
    yy, xx = np.mgrid[0:height, 0:width]
    image = speckle * np.clip(1.2 - yy / height, 0.3, 1.0)
    image[((xx - width * 0.5) / 90) ** 2 + ((yy - height * 0.5) / 55) ** 2 < 1] *= 0.2
    image = np.clip(image, 0, 255).astype(np.uint8)
    keep_out = (
        np.zeros((height, width), np.uint8) if avoid is None else cv2.dilate(avoid.astype(np.uint8), np.ones((9, 9)))
    )
    for index in range(42):  # ligaments and calcifications: thin and bright, like strokes
        echo = np.zeros((height, width), np.uint8)
        brightness = int(rng.integers(150, 255))
        if index < 12:
            p, delta = rng.integers(0, [width, height]), rng.integers(-80, 80, 2)
            cv2.line(echo, (int(p[0]), int(p[1])), (int(p[0] + delta[0]), int(p[1] + delta[1])), 255, 2)
        else:
            centre = rng.integers(0, [width, height])
            cv2.circle(echo, (int(centre[0]), int(centre[1])), int(rng.integers(1, 3)), 255, -1)
        if not (echo & keep_out).any():
            image[echo > 0] = brightness
    return np.dstack([image] * 3)


def captions(lines: list) -> np.ndarray:
    return np.logical_or.reduce([ink_of(text, origin, size, (HEIGHT, WIDTH)) for text, origin, size, _ in lines])


def ink_of(text: str, origin: tuple[int, int], font_scale: float, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.putText(mask, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, 1, cv2.LINE_AA)
    return mask > 64  # the antialiased fringe below this is invisible against speckle anyway


def draw(image: np.ndarray, lines: list) -> tuple[np.ndarray, list[np.ndarray]]:
    """``image`` with ``lines`` drawn on it, and the ink mask of each line."""
    out = image.copy()
    inks = []
    for text, origin, font_scale, colour in lines:
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, colour, 1, cv2.LINE_AA)
        inks.append(ink_of(text, origin, font_scale, image.shape))
    return out, inks


def covered(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for box in boxes:
        mask[box.y : box.y + box.h, box.x : box.x + box.w] = True
    return mask


# --- Regions --------------------------------------------------------------------------------


def numbered(width: int = 40, height: int = 30) -> np.ndarray:
    """An RGB image whose every pixel is different, to see exactly which ones a function moved."""
    values = np.arange(width * height, dtype=np.uint32).reshape(height, width)
    return np.dstack([values % 256, values // 256, np.full_like(values, 7)]).astype(np.uint8)


def test_crop_to_region_keeps_inclusive_bounds_and_returns_the_offset():
    image = numbered()
    crop, offset = redaction.crop_to_region(image, (10, 5, 29, 24))
    assert offset == (10, 5)
    assert crop.shape == (20, 20, 3)
    assert np.array_equal(crop, image[5:25, 10:30])


def test_crop_to_region_clips_a_region_that_runs_past_the_image():
    image = numbered()
    crop, offset = redaction.crop_to_region(image, (-3, 20, 500, 400))
    assert offset == (0, 20)
    assert np.array_equal(crop, image[20:, :])


@pytest.mark.parametrize(
    "region, message",
    [
        ((50, 0, 60, 10), "outside"),
        ((0, 40, 10, 50), "outside"),
        ((20, 5, 10, 15), "maximum before its minimum"),
        ((1, 2, 3), "4 bounds"),
    ],
)
def test_crop_to_region_refuses_a_region_with_nothing_of_the_image_in_it(region, message):
    with pytest.raises(ValueError, match=message):
        redaction.crop_to_region(numbered(), region)


def test_blank_outside_keeps_two_side_by_side_regions_and_blacks_out_the_rest():
    image = np.full((100, 200, 3), 200, np.uint8)
    left, right = (20, 10, 89, 79), (110, 10, 179, 79)
    crop, offset = redaction.crop_to_region(image, redaction.bounding_region([left, right]))
    assert offset == (20, 10)
    out = redaction.blank_outside(crop, [left, right], offset)
    assert out.shape == (70, 160, 3)
    assert (out[:, :70] == 200).all()  # left region, x 20-89
    assert (out[:, 70:90] == 0).all()  # the gap, x 90-109
    assert (out[:, 90:] == 200).all()  # right region, x 110-179
    assert (crop == 200).all()  # the input is left alone


def test_blank_outside_ignores_a_region_beyond_the_crop_and_blacks_out_its_corners():
    image = np.full((100, 100, 3), 90, np.uint8)
    tissue, doppler_strip = (10, 10, 89, 59), (0, 70, 99, 99)
    crop, offset = redaction.crop_to_region(image, tissue)
    out = redaction.blank_outside(crop, [tissue, doppler_strip], offset)
    assert (out == 90).all()
    sector = (30, 10, 69, 59)  # a narrower region inside the crop: the crop's sides go black
    out = redaction.blank_outside(crop, [sector], offset)
    assert (out[:, 20:60] == 90).all()
    assert (out[:, :20] == 0).all() and (out[:, 60:] == 0).all()


def test_blank_outside_blacks_out_the_text_beside_the_regions():
    image, inks = draw(scan(0), OUTSIDE + INSIDE)
    region = (TISSUE[0], 0, TISSUE[2], HEIGHT - 1)  # a region as tall as the image: the header stays in the crop
    crop, offset = redaction.crop_to_region(image, region)
    out = redaction.blank_outside(crop, [TISSUE], offset)
    full = np.zeros_like(image)
    full[offset[1] : offset[1] + out.shape[0], offset[0] : offset[0] + out.shape[1]] = out
    for ink in inks[:3]:  # header and footer lines: nothing of them left in the crop
        assert (full[ink] == 0).all()


# --- Finding text ---------------------------------------------------------------------------


@needs_tesseract
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_find_text_boxes_cover_every_drawn_line(seed):
    image, inks = draw(scan(seed, avoid=captions(OUTSIDE + INSIDE)), OUTSIDE + INSIDE)
    boxes = redaction.find_text(image)
    inside = covered(boxes, image.shape)
    for (text, *_), ink in zip(OUTSIDE + INSIDE, inks, strict=True):
        share = (ink & inside).sum() / ink.sum()
        assert share >= 0.95, f"{text!r}: only {share:.0%} of its ink inside the boxes"
    # one box per line (words merged), not a box per word nor one box over the whole image
    assert len(boxes) <= len(inks) + 1
    assert inside.sum() < 0.1 * image.shape[0] * image.shape[1]


@needs_tesseract
def test_find_text_finds_text_left_inside_the_cropped_region():
    image, inks = draw(scan(3, avoid=captions(OUTSIDE + INSIDE)), OUTSIDE + INSIDE)
    crop, (ox, oy) = redaction.crop_to_region(image, TISSUE)
    crop = redaction.blank_outside(crop, [TISSUE], (ox, oy))
    boxes = redaction.find_text(crop)
    inside = covered(boxes, crop.shape)
    for ink in inks[3:]:
        ink = ink[oy : oy + crop.shape[0], ox : ox + crop.shape[1]]
        assert (ink & inside).sum() / ink.sum() >= 0.95


@needs_tesseract
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("scale, blur", [(45, 1.2), (55, 1.0)])
def test_find_text_finds_no_text_in_speckle(seed, scale, blur):
    assert redaction.find_text(scan(seed, scale=scale, blur=blur)) == []


@needs_tesseract
def test_find_text_returns_positions_and_counts_never_the_text(caplog):
    image, _ = draw(scan(0), OUTSIDE)
    boxes = redaction.find_text(image)
    assert boxes
    for box in boxes:
        values = box.as_dict().values()
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        assert 0 <= box.confidence <= 100 and box.length >= 1
    assert "SMITH" not in repr(boxes) and "SMITH" not in caplog.text


def test_find_text_raises_when_tesseract_is_missing():
    with pytest.raises(TextDetectionUnavailable, match="not found.*tesseract-ocr"):
        redaction.find_text(scan(0, 64, 48), binary="/nonexistent/tesseract")


@needs_tesseract
def test_find_text_raises_when_the_english_data_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))  # an empty folder: no eng.traineddata
    with pytest.raises(TextDetectionUnavailable, match="tesseract failed"):
        redaction.find_text(scan(0, 64, 48))


# --- Boxes ----------------------------------------------------------------------------------


@needs_tesseract
def test_apply_boxes_blacks_out_the_found_text_and_nothing_else():
    image, inks = draw(scan(1, avoid=captions(OUTSIDE + INSIDE)), OUTSIDE + INSIDE)
    boxes = redaction.find_text(image)
    out = redaction.apply_boxes(image, boxes)
    inside = covered(boxes, image.shape)
    assert (out[inside] == 0).all()
    assert np.array_equal(out[~inside], image[~inside])
    ink = np.logical_or.reduce(inks)
    assert (out[ink] != 0).any(axis=1).sum() <= 0.05 * ink.sum()


def test_apply_boxes_clips_boxes_to_the_image():
    image = np.full((20, 30, 3), 255, np.uint8)
    out = redaction.apply_boxes(image, [Box(-5, -5, 10, 10), Box(25, 15, 50, 50), Box(40, 40, 5, 5)])
    assert (out[:5, :5] == 0).all() and (out[15:, 25:] == 0).all()
    assert (out == 0).all(axis=2).sum() == 25 + 25
    assert (image == 255).all()


def test_validate_boxes_rounds_fractional_edges_outwards():
    boxes = redaction.validate_boxes(
        [{"x": 1.5, "y": 2, "w": 3.2, "h": 4, "confidence": 88}, {"x": 0, "y": 0, "w": 640, "h": 480}], 640, 480
    )
    assert boxes == [Box(1, 2, 4, 4), Box(0, 0, 640, 480)]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"x": 0, "y": 0, "w": 1, "h": 1}, "must be a list"),
        ("[]", "must be a list"),
        ([{"x": 0, "y": 0, "w": 1, "h": 1}] * 65, "at most 64"),
        ([[0, 0, 1, 1]], "must be an object"),
        ([{"x": 0, "y": 0, "w": 1}], "missing h"),
        ([{"x": "0", "y": 0, "w": 1, "h": 1}], "x must be a finite number"),
        ([{"x": True, "y": 0, "w": 1, "h": 1}], "x must be a finite number"),
        ([{"x": 0, "y": math.nan, "w": 1, "h": 1}], "y must be a finite number"),
        ([{"x": 0, "y": 0, "w": math.inf, "h": 1}], "w must be a finite number"),
        ([{"x": 0, "y": 0, "w": None, "h": 1}], "w must be a finite number"),
        ([{"x": 0, "y": 0, "w": 0, "h": 1}], "positive"),
        ([{"x": 0, "y": 0, "w": 5, "h": -1}], "positive"),
        ([{"x": -1, "y": 0, "w": 5, "h": 5}], "outside the 640x480"),
        ([{"x": 600, "y": 0, "w": 41, "h": 5}], "outside the 640x480"),
        ([{"x": 0, "y": 0, "w": 1, "h": 1}, {"x": 0, "y": 479.5, "w": 1, "h": 1}], "box 1: outside"),
    ],
)
def test_validate_boxes_refuses_malformed_or_out_of_bounds_boxes(raw, message):
    with pytest.raises(ValueError, match=message):
        redaction.validate_boxes(raw, 640, 480)


# --- Groups ---------------------------------------------------------------------------------


def test_scanner_group_key_is_the_same_for_the_same_model_and_size_only():
    assert redaction.scanner_group_key("LOGIQ E9", 856, 606) == redaction.scanner_group_key(" LOGIQ  E9 ", 856, 606)
    assert redaction.scanner_group_key("LOGIQ E9", 856, 606) != redaction.scanner_group_key("LOGIQ E9", 606, 856)
    assert redaction.scanner_group_key("LOGIQ E9", 856, 606) != redaction.scanner_group_key("LOGIQ E10", 856, 606)
    assert redaction.scanner_group_key(None, 800, 600) == redaction.scanner_group_key("", 800, 600)


def test_group_by_scanner_groups_in_first_seen_order():
    images = [("a", "CX50", 800, 600), ("b", "Aplio", 800, 600), ("c", "CX50", 800, 600), ("d", "CX50", 640, 480)]
    groups = redaction.group_by_scanner(images, key=lambda image: image[1:])
    assert [[image[0] for image in group] for group in groups.values()] == [["a", "c"], ["b"], ["d"]]


# --- Real files with burned-in text (pydicom-data wheel) -------------------------------------


def burned_in(name: str) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The first frame of a pydicom-data file as 8-bit RGB, and its ultrasound regions."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_color_lut

    path = get_testdata_file(name, download=False)  # never fetch at test time: the wheel or nothing
    if path is None:
        pytest.skip("the pydicom-data wheel is not installed")
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1)) > 1:
        pixels = pixels[0]
    rgb = apply_color_lut(pixels, ds)  # these files are PALETTE COLOR with 16-bit entries
    rgb = (rgb >> 8).astype(np.uint8)
    regions = [
        (r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1, r.RegionLocationMaxY1)
        for r in ds.SequenceOfUltrasoundRegions
    ]
    return rgb, regions


@needs_tesseract
@pytest.mark.parametrize("name", ["OBXXXX1A.dcm", "OBXXXX1A_rle.dcm", "OBXXXX1A_2frame.dcm"])
def test_find_text_covers_the_burned_in_id_and_date_of_a_real_scan(name):
    rgb, regions = burned_in(name)
    boxes = redaction.find_text(rgb)
    # The header band above the 2D region carries the ID and the date in white on blue: all its
    # bright pixels are print.
    header = rgb[: regions[0][1]].max(axis=2) >= 150
    assert header.sum() > 2000
    assert (header & covered(boxes, rgb.shape)[: regions[0][1]]).sum() / header.sum() >= 0.95
    assert len(boxes) < 30


@needs_tesseract
def test_find_text_finds_the_caption_left_inside_the_tissue_region_of_a_real_scan():
    rgb, regions = burned_in("OBXXXX1A.dcm")
    tissue = regions[0]  # RegionSpatialFormat 1 (2D); the second is the spectral strip below it
    crop, offset = redaction.crop_to_region(rgb, tissue)
    crop = redaction.blank_outside(crop, regions, offset)
    boxes = redaction.find_text(crop)
    # "+ Cist Mag 1.06 cm", a measurement caption at the top left of the region
    caption = np.zeros(crop.shape[:2], bool)
    caption[20:45, 20:190] = crop[20:45, 20:190].max(axis=2) >= 150
    assert caption.sum() > 100
    assert (caption & covered(boxes, crop.shape)).sum() / caption.sum() >= 0.95
