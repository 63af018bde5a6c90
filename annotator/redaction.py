"""Burned-in text removal, pixel side: crop to the ultrasound regions, find text, black it out.

Plain module (numpy + OpenCV + the ``tesseract`` binary; no Django) called by the DICOM import and
by the curator's redaction page. Images are 8-bit RGB arrays of shape (height, width, 3); every
function returns a new array and leaves its input alone.

What is recognised is never kept: tesseract's words only decide *where* text is. A ``Box`` carries
a position, a confidence and a character count, never the characters, because the text is the
patient's name or ID more often than not. Nothing here logs, stores or raises with the text.

tesseract is called as a subprocess with the image on stdin rather than through pytesseract, which
writes the image to a temporary file (the pixels with the name in them, on disk) and hands back
the recognised text; the wrapper here is a few lines and keeps both out of reach.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import cv2
import numpy as np

# A region as DICOM's RegionLocationMinX0, MinY0, MaxX1, MaxY1: inclusive pixel bounds.
Region = tuple[int, int, int, int]
T = TypeVar("T")

MAX_BOXES = 64  # boxes one image may carry from the browser; a real screen has a dozen at most
UPSCALE = 2  # scanner fonts are 8-12 px high; tesseract's LSTM reads best at 20-30 px
PAD = 3  # pixels added around each found line (antialiased glyph edges lie outside the word box)
MAX_GLYPH = 48  # pixels: no caption letter is taller or wider; longer strokes are lines, not print
INK_FLOOR = 60  # grey levels a stroke must stand above its surroundings to count as ink
SURE_CONFIDENCE = 90.0  # a word tesseract is this sure of is kept on its geometry alone
SHORT_CONFIDENCE = 60.0  # two characters need this much too (speckle reads as "a1", "Il"); one, SURE
TESSERACT_TIMEOUT = 60  # seconds; a stuck OCR must not hold an import worker forever


class TextDetectionUnavailable(RuntimeError):
    """tesseract (or its English data) is missing or failed: the image was NOT checked for text."""


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels; ``confidence`` and ``length`` are set for detected text only."""

    x: int
    y: int
    w: int
    h: int
    confidence: float | None = None  # tesseract's mean word confidence, 0-100
    length: int | None = None  # number of characters recognised (the characters are not kept)

    def as_dict(self) -> dict[str, int | float | None]:
        return asdict(self)


# --- Regions --------------------------------------------------------------------------------


def _clip_region(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """Inclusive DICOM bounds -> half-open [x0, x1) x [y0, y1) clipped to the image.

    Scanners do write regions that run past the image (pydicom's own ``ybr_color`` example has one),
    so clipping is the norm, not an error; a region with nothing left inside is one.
    """
    if len(region) != 4:
        raise ValueError(f"a region has 4 bounds (min x, min y, max x, max y), not {len(region)}")
    min_x, min_y, max_x, max_y = (int(v) for v in region)
    if max_x < min_x or max_y < min_y:
        raise ValueError(f"region {tuple(region)} has its maximum before its minimum")
    x0, y0 = max(min_x, 0), max(min_y, 0)
    x1, y1 = min(max_x + 1, width), min(max_y + 1, height)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"region {tuple(region)} lies outside the {width}x{height} image")
    return x0, y0, x1, y1


def bounding_region(regions: Sequence[Region]) -> Region:
    """The smallest region holding all of ``regions`` (two 2D regions side by side crop as one)."""
    if not regions:
        raise ValueError("no region given")
    return (
        min(int(r[0]) for r in regions),
        min(int(r[1]) for r in regions),
        max(int(r[2]) for r in regions),
        max(int(r[3]) for r in regions),
    )


def crop_to_region(rgb: np.ndarray, region: Region) -> tuple[np.ndarray, tuple[int, int]]:
    """Crop to ``region`` (inclusive DICOM bounds); returns the crop and its (x0, y0) offset."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = _clip_region(region, width, height)
    return rgb[y0:y1, x0:x1].copy(), (x0, y0)


def blank_outside(rgb: np.ndarray, regions: Sequence[Region], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Black out every pixel of ``rgb`` that lies in none of ``regions``.

    ``regions`` are in the coordinates of the full image and ``offset`` is where ``rgb`` sat in it
    (as returned by ``crop_to_region``). Regions that miss the crop entirely are ignored; with no
    region touching the crop, everything is blacked out (nothing was declared as image there).
    """
    height, width = rgb.shape[:2]
    ox, oy = offset
    keep = np.zeros((height, width), dtype=bool)
    for region in regions:
        shifted = (region[0] - ox, region[1] - oy, region[2] - ox, region[3] - oy)
        try:
            x0, y0, x1, y1 = _clip_region(shifted, width, height)
        except ValueError:
            if shifted[2] < shifted[0] or shifted[3] < shifted[1]:
                raise
            continue  # a region elsewhere in the full image (e.g. the Doppler strip below the crop)
        keep[y0:y1, x0:x1] = True
    out = rgb.copy()
    out[~keep] = 0
    return out


# --- Boxes ----------------------------------------------------------------------------------


def apply_boxes(rgb: np.ndarray, boxes: Iterable[Box]) -> np.ndarray:
    """Paint each box black, clipped to the image."""
    out = rgb.copy()
    height, width = out.shape[:2]
    for box in boxes:
        x0, y0 = max(box.x, 0), max(box.y, 0)
        x1, y1 = min(box.x + box.w, width), min(box.y + box.h, height)
        if x0 < x1 and y0 < y1:
            out[y0:y1, x0:x1] = 0
    return out


def black_out_png(png: bytes, boxes: Iterable[Box]) -> bytes:
    """The PNG with ``boxes`` painted black, as 8-bit RGB PNG bytes (what the redaction step stores)."""
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the stored image cannot be decoded")
    ok, buf = cv2.imencode(".png", apply_boxes(bgr, boxes), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _number(value: object, name: str, index: int) -> float:
    # bool is an int to Python but never a coordinate a browser meant to send
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"box {index}: {name} must be a finite number")
    return float(value)


def validate_boxes(raw: object, width: int, height: int, max_boxes: int = MAX_BOXES) -> list[Box]:
    """Boxes from a browser (a list of {x, y, w, h} in image pixels) -> whole-pixel ``Box``es.

    Fractional edges are rounded outwards so a box never covers less than the curator drew. Other
    keys (a detected box sent back with its confidence) are ignored. Raises ValueError naming the
    first fault; nothing is partly accepted.
    """
    if not isinstance(raw, list):
        raise ValueError("boxes must be a list")
    if len(raw) > max_boxes:
        raise ValueError(f"at most {max_boxes} boxes per image, got {len(raw)}")
    boxes = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"box {index}: must be an object with x, y, w and h")
        missing = [key for key in ("x", "y", "w", "h") if key not in item]
        if missing:
            raise ValueError(f"box {index}: missing {', '.join(missing)}")
        x, y, w, h = (_number(item[key], key, index) for key in ("x", "y", "w", "h"))
        if w <= 0 or h <= 0:
            raise ValueError(f"box {index}: width and height must be positive")
        if x < 0 or y < 0 or x + w > width or y + h > height:
            raise ValueError(f"box {index}: outside the {width}x{height} image")
        x0, y0 = math.floor(x), math.floor(y)
        boxes.append(Box(x0, y0, math.ceil(x + w) - x0, math.ceil(y + h) - y0))
    return boxes


# --- Text detection -------------------------------------------------------------------------


def _ink(rgb: np.ndarray) -> np.ndarray:
    """Text-like strokes as a binary mask (255 = ink), upscaled ``UPSCALE`` times.

    The brightest channel makes coloured overlays (yellow, cyan, green captions) as bright as white
    ones. A white top-hat keeps what is brighter than its surroundings and thinner than the kernel:
    glyph strokes, not broad bright tissue, which is flattened into the background; the fixed floor
    then drops the speckle's low ripples that Otsu alone would keep on a nearly empty top-hat.
    """
    grey = rgb.max(axis=2) if rgb.ndim == 3 else rgb
    grey = cv2.resize(grey, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (9 * UPSCALE, 9 * UPSCALE))
    strokes = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel)
    _, ink = cv2.threshold(strokes, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink[strokes < INK_FLOOR] = 0
    # Strokes longer than any letter (echoes of a ligament or a needle, calliper lines, underlines)
    # are erased: next to a caption they make tesseract read the line and the caption as one
    # garbled word, and the caption is lost.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    longest = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    too_long = longest > MAX_GLYPH * UPSCALE
    too_long[0] = False  # the background
    if too_long.any():
        ink[too_long[labels]] = 0
    return ink


def _run_tesseract(image: np.ndarray, binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise TextDetectionUnavailable(
            f"the tesseract program ({binary!r}) was not found: install Debian's tesseract-ocr and "
            "tesseract-ocr-eng (scripts/test and the Docker image do); without it images cannot be "
            "checked for burned-in text"
        )
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise TextDetectionUnavailable("the image could not be encoded for tesseract")
    # One thread: the import runs one image at a time per worker, and OpenMP's threads only fight
    # the other workers (and PostgreSQL) for the same cores.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [path, "stdin", "stdout", "-l", "eng", "--psm", "11", "--dpi", "300", "tsv"]
    try:
        done = subprocess.run(
            command, input=png.tobytes(), capture_output=True, timeout=TESSERACT_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise TextDetectionUnavailable(f"tesseract took more than {TESSERACT_TIMEOUT} s on one image") from None
    if done.returncode != 0:
        # stderr holds tesseract's own complaint (missing eng data, bad image), never the image text
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise TextDetectionUnavailable(f"tesseract failed (exit {done.returncode}): {reason[0][:200]}")
    return done.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Word:
    x: int
    y: int
    w: int
    h: int
    confidence: float
    length: int
    sure: bool  # False: letter-shaped but short and unsure; kept only on a line with a sure word


class _Glyphs:
    """Connected components of the ink mask, to ask whether a word's box holds letter-shaped ink.

    tesseract's confidence alone is a poor judge here: it gave 0 to a cleanly drawn "SMITH^JOHN"
    and 40-70 to speckle clusters. Letters have a shape speckle lacks: each is one or two blobs
    about as tall as the line, side by side; a speckle cluster is many small dots of any size.
    """

    def __init__(self, ink: np.ndarray) -> None:
        _, _, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
        self.stats = stats[1:]  # label 0 is the background
        self.centroids = centroids[1:]

    def letter_like(self, x: int, y: int, w: int, h: int, characters: int) -> bool:
        cx, cy = self.centroids[:, 0], self.centroids[:, 1]
        inside = (cx >= x) & (cx < x + w) & (cy >= y) & (cy < y + h)
        heights = self.stats[inside, cv2.CC_STAT_HEIGHT]
        widths = self.stats[inside, cv2.CC_STAT_WIDTH]
        areas = self.stats[inside, cv2.CC_STAT_AREA]
        # The letters' height is the median of the blobs that are not dots; measured on the blobs
        # rather than taken from the box, because an echo crossing the caption makes the box tall.
        tall = heights >= 5 * UPSCALE
        if not tall.any():
            return False
        letter = float(np.median(heights[tall]))
        if letter < 0.2 * h:
            return False
        glyph = (heights >= 0.5 * letter) & (heights <= 1.3 * letter) & (widths <= 2 * letter)
        glyph_share = areas[glyph].sum() / areas.sum()
        return bool(glyph.sum() >= max(1, characters // 2) and glyph_share >= 0.5)

    def extend_line(self, box: Box) -> Box:
        """``box`` (image pixels) grown along its line over letter-sized ink beside it.

        tesseract often drops a word of a line it otherwise reads ("Gn" of "Gn 60 DR 70", "JANE"
        after "DOE"), and an unread word is an unredacted word. Blobs the size of the line's letters,
        level with it and at most a letter's height away, are taken to be more of the same print.
        """
        x0, y0 = box.x * UPSCALE, box.y * UPSCALE
        x1, y1 = (box.x + box.w) * UPSCALE, (box.y + box.h) * UPSCALE
        left, top = self.stats[:, cv2.CC_STAT_LEFT], self.stats[:, cv2.CC_STAT_TOP]
        right = left + self.stats[:, cv2.CC_STAT_WIDTH]
        bottom = top + self.stats[:, cv2.CC_STAT_HEIGHT]
        heights = self.stats[:, cv2.CC_STAT_HEIGHT]
        line = y1 - y0
        letter_sized = (
            (heights >= 0.3 * line) & (heights <= 1.3 * line) & (self.stats[:, cv2.CC_STAT_WIDTH] <= 2 * line)
        )
        level = np.minimum(bottom, y1) - np.maximum(top, y0) >= 0.5 * heights
        taken = np.zeros(len(self.stats), dtype=bool)
        while True:
            gap = np.maximum(np.maximum(left - x1, x0 - right), 0)
            new = letter_sized & level & (gap <= line) & ~taken
            if not new.any():
                break
            taken |= new
            x0, x1 = min(x0, int(left[new].min())), max(x1, int(right[new].max()))
            y0, y1 = min(y0, int(top[new].min())), max(y1, int(bottom[new].max()))
        if not taken.any():
            return box
        bx0, by0 = x0 // UPSCALE, y0 // UPSCALE
        bx1, by1 = -(-x1 // UPSCALE), -(-y1 // UPSCALE)
        return Box(bx0, by0, bx1 - bx0, by1 - by0, box.confidence, box.length)


def _words(tsv: str, glyphs: _Glyphs) -> list[_Word]:
    """tesseract's TSV -> words that look like print, in original-image pixels, without their text."""
    words = []
    for line in tsv.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 12 or cols[0] != "5":  # level 5 = word
            continue
        text = cols[11].strip()
        length = len(text)
        alnum = sum(ch.isalnum() for ch in text)
        confidence = max(float(cols[10]), 0.0)
        ux, uy, uw, uh = (int(cols[i]) for i in (6, 7, 8, 9))
        del cols, line, text  # only the counts go further
        if alnum == 0:
            continue
        # Scanner captions are 7-48 px high in the image (14-96 here, upscaled); a word is about as
        # wide as its characters and not much taller than one.
        if not 7 * UPSCALE <= uh <= MAX_GLYPH * UPSCALE or uw > 2.5 * uh * length or uh > 3 * uw:
            continue
        if confidence < SURE_CONFIDENCE and not glyphs.letter_like(ux, uy, uw, uh, alnum):
            continue
        # What identifies someone is long (names, IDs, dates); the short words speckle produces
        # need a confident reading, or a sure word beside them on the same line ("DR 70" after
        # "Gn 60").
        sure = alnum > 2 or confidence >= (SHORT_CONFIDENCE if alnum == 2 else SURE_CONFIDENCE)
        x0, y0 = ux // UPSCALE, uy // UPSCALE
        x1, y1 = -(-(ux + uw) // UPSCALE), -(-(uy + uh) // UPSCALE)
        words.append(_Word(x0, y0, x1 - x0, y1 - y0, confidence, length, sure))
    return words


def _same_line(a: Box, b: Box) -> bool:
    overlap_y = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    gap_x = max(b.x - (a.x + a.w), a.x - (b.x + b.w), 0)
    return overlap_y >= 0.5 * min(a.h, b.h) and gap_x <= 2 * max(a.h, b.h)


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    chars = (a.length or 0) + (b.length or 0)
    confidence = ((a.confidence or 0) * (a.length or 0) + (b.confidence or 0) * (b.length or 0)) / max(chars, 1)
    return Box(x0, y0, x1 - x0, y1 - y0, round(confidence, 1), chars)


def _merge_lines(lines: list[tuple[Box, bool]]) -> list[Box]:
    """Join (box, sure) pairs on the same line (overlapping in y, gap under ~2 glyph heights) into
    one box, until no two boxes join any more (a merged box may reach a word its parts did not);
    a line made only of unsure words is dropped."""
    merged = True
    while merged:  # each pass is O(n²); two or three passes settle a screen of captions
        merged = False
        joined: list[tuple[Box, bool]] = []
        for box, sure in lines:
            for k, (line, line_sure) in enumerate(joined):
                if _same_line(line, box):
                    joined[k] = (_union(line, box), line_sure or sure)
                    merged = True
                    break
            else:
                joined.append((box, sure))
        lines = joined
    return sorted((box for box, sure in lines if sure), key=lambda b: (b.y, b.x))


def _pad(box: Box, width: int, height: int, pad: int) -> Box:
    x0, y0 = max(box.x - pad, 0), max(box.y - pad, 0)
    x1, y1 = min(box.x + box.w + pad, width), min(box.y + box.h + pad, height)
    return Box(x0, y0, x1 - x0, y1 - y0, box.confidence, box.length)


def find_text(rgb: np.ndarray, *, binary: str = "tesseract", pad: int = PAD) -> list[Box]:
    """Boxes around the lines of text tesseract finds in ``rgb`` (a position, never the text).

    Raises ``TextDetectionUnavailable`` when tesseract is missing or fails: an image that could not
    be checked must not pass as an image without text.
    """
    height, width = rgb.shape[:2]
    ink = _ink(rgb)
    # tesseract reads dark print on white best (its training data); the mask is white ink on black
    tsv = _run_tesseract(255 - ink, binary)
    glyphs = _Glyphs(ink)
    words = [(Box(w.x, w.y, w.w, w.h, round(w.confidence, 1), w.length), w.sure) for w in _words(tsv, glyphs)]
    # grown lines may now touch each other (two halves of one caption): join them again
    lines = _merge_lines([(glyphs.extend_line(line), True) for line in _merge_lines(words)])
    return [_pad(box, width, height, pad) for box in lines]


# --- Groups ---------------------------------------------------------------------------------


def scanner_group_key(model_name: str | None, width: int, height: int) -> str:
    """Images from the same scanner model at the same size put their captions in the same places,
    so one set of boxes drawn by the curator fits the whole group."""
    model = " ".join((model_name or "").split()) or "unknown model"
    return f"{model} {int(width)}x{int(height)}"


def group_by_scanner(items: Iterable[T], key: Callable[[T], tuple[str | None, int, int]]) -> dict[str, list[T]]:
    """Items grouped by ``scanner_group_key`` of ``key(item)`` = (model name, width, height), in
    first-seen order."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(scanner_group_key(*key(item)), []).append(item)
    return groups
