"""The BUS-UCLM layout: already anonymised PNGs named XXXX_YYY.png, optional masks/ and INFO.csv.

Every defect met is reported (file, problem, what was done); everything that can be imported is;
each image goes in its own transaction so nothing is ever half-written; re-importing the same
files changes nothing. PNGs skip the burned-in text step (the release is anonymised already).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
from django.conf import settings
from django.db import transaction

from annotator import geometry, workflow
from annotator.models import Image, ImageData, Patient, Status

from .base import ImportReport, Source

# [0-9], not \d: \d also matches other scripts' digits ("AAAA_٠٠١.png"); \Z, not $: no trailing newline.
NAME_RE = re.compile(r"^([A-Z]{4})_([0-9]{3,})\.png\Z")
YES = {"yes": True, "no": False}
LENIENT_YES = {"y": True, "n": False, "true": True, "false": False, "1": True, "0": False, "si": True, "sí": True}
LABELS = {"normal", "benign", "malignant"}
# The per-image lesion limit of the workflow (a mask with more is not read: see _read_mask).
MAX_LESIONS = geometry.MAX_LESIONS


def decode_png(data: bytes) -> PIL.Image.Image:
    """Decode PNG bytes fully, refusing non-PNGs, truncated files and decompression bombs."""
    PIL.Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
    try:
        with PIL.Image.open(io.BytesIO(data)) as probe:
            if probe.format != "PNG":
                raise ValueError(f"not a PNG image (it is {probe.format or 'unknown'})")
            w, h = probe.size
            if w * h > settings.MAX_IMAGE_PIXELS:
                raise ValueError(f"image of {w}x{h} pixels exceeds the limit of {settings.MAX_IMAGE_PIXELS}")
        img = PIL.Image.open(io.BytesIO(data))
        img.load()
        return img
    except PIL.Image.DecompressionBombError as e:
        raise ValueError(f"refused as a decompression bomb ({e})") from None
    except PIL.UnidentifiedImageError:
        raise ValueError("not an image") from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"damaged or truncated image ({e})") from None


def decode_info_csv(data: bytes, where: str, report: ImportReport) -> str:
    """INFO.csv as text: UTF-8 with or without BOM (the release's), UTF-16 by its BOM, else
    Windows-1252 (what Excel writes on a Spanish or English Windows), reported.

    Raises ValueError for text that cannot be read at all.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # the BOM gives the byte order and is dropped
        except UnicodeDecodeError as e:
            raise ValueError(f"not valid UTF-16 despite its byte-order mark ({e.reason})") from None
    if b"\x00" in data:
        raise ValueError("contains NUL bytes (UTF-16 without a byte-order mark?); save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    report.defect(where, "not UTF-8", "read as Windows-1252 (Latin-1); check accented values")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # the five bytes cp1252 leaves undefined


DELIMITERS = {";": "';'", ",": "','", "\t": "a tab"}


def sniff_delimiter(text: str, where: str, report: ImportReport) -> str:
    """The separator used most in the header line; ';' (the release's) on a tie."""
    header = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=header.count)  # max keeps the first of equals: ';'
    if delimiter != ";" and header.count(delimiter):
        report.defect(where, f"separator is {DELIMITERS[delimiter]} not ';'", f"read with {DELIMITERS[delimiter]}")
        return delimiter
    return ";"


def read_info_csv(data: bytes, where: str, report: ImportReport) -> dict[str, dict]:
    """Rows of INFO.csv by image name, with lenient reading of the known real-world defects.

    An optional ``PixelSpacing`` column (mm per pixel; not in the BUS-UCLM release) is stored as
    the image's pixel spacing; the export's INFO.csv keeps the release's six columns. Raises
    ValueError when the file cannot be read as a table (the whole INFO.csv is then ignored: a
    half-read file would leave the flags of the rest silently No).
    """
    text = decode_info_csv(data, where, report)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text, where, report))
    rows: dict[str, dict] = {}
    lineno = 1
    try:
        header = {h.strip() for h in (reader.fieldnames or [])}
        needed = {"Image", "Label", "Doppler", "Marks", "Combined"}
        if not needed <= header:
            report.defect(where, f"header lacks {', '.join(sorted(needed - header))}", "INFO.csv ignored")
            return {}
        for lineno, raw in enumerate(reader, start=2):
            _info_row(raw, f"{where} line {lineno}", rows, report)
    except csv.Error as e:
        # e.g. a field past csv.field_size_limit() (kept: it bounds memory) or a NUL byte
        raise ValueError(f"line {lineno + 1}: not readable as CSV ({e})") from None
    return rows


def _info_row(raw: dict, line: str, rows: dict[str, dict], report: ImportReport) -> None:
    """Read one INFO.csv row into ``rows`` (by image name), reporting what it had to guess."""
    row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
    name = row.get("Image", "")
    here = f"{line} ({name})"
    flags = {}
    for col in ("Doppler", "Marks", "Combined"):
        value = row.get(col, "").lower()
        if value in YES:
            flags[col.lower()] = YES[value]
        elif value in LENIENT_YES:
            flags[col.lower()] = LENIENT_YES[value]
            report.defect(
                here, f"{col} is {row[col]!r}, not Yes/No", f"read as {'Yes' if flags[col.lower()] else 'No'}"
            )
        else:
            flags[col.lower()] = False
            report.defect(here, f"{col} is {row.get(col)!r}, not Yes/No", "read as No")
    label = row.get("Label", "").lower()
    if label not in LABELS:
        report.defect(here, f"Label is {row.get('Label')!r}", "label taken from the mask")
        label = ""
    spacing = None
    raw_spacing = row.get("PixelSpacing", "")
    if raw_spacing:
        try:
            spacing = float(raw_spacing.replace(",", "."))
            if not (0 < spacing < 10):
                raise ValueError
        except ValueError:
            spacing = None
            report.defect(here, f"PixelSpacing is {raw_spacing!r}, not a size in mm", "no pixel spacing stored")
    rows[name] = {"label": label, "resolution": row.get("Resolution", ""), "spacing": spacing, **flags}


def import_pngs(
    source: Source,
    report: ImportReport,
    *,
    as_status: str,
    actor,
    author,
    annotator=None,
    progress: Callable[[int, int, str], None] | None = None,
) -> None:
    """Import the source's PNGs (and masks and INFO.csv) into ``report``; the caller holds no_query_log."""
    info: dict[str, dict] = {}
    if source.info_csv is not None:
        try:
            info = read_info_csv(source.info_csv(), source.info_name, report)
        except ValueError as e:
            report.defect(source.info_name, str(e), "INFO.csv ignored")
    for name in sorted(set(source.masks) - set(source.images)):
        report.defect(f"masks/{name}", "mask without an image", "skipped")
    for name in sorted(set(info) - set(source.images)):
        report.defect(source.info_name, f"row for {name}, which is not among the images", "row ignored")
    names = sorted(source.images)
    for i, name in enumerate(names, start=1):
        if progress:
            progress(i, len(names), name)
        try:
            outcome = _import_one(name, source, info.get(name), as_status, author, annotator, actor, report)
        except Exception as e:  # noqa: BLE001 - one bad file must never stop the rest
            report.defect(name, f"unexpected error: {type(e).__name__}: {e}", "skipped")
            outcome = "failed"
        getattr(report, outcome).append(name)


def _max_lesions() -> int:
    """The limit as the package names it (``importing.MAX_LESIONS``), where callers and tests set it."""
    from annotator import importing

    return importing.MAX_LESIONS


# --- orientation and masks --------------------------------------------------------------------

# EXIF orientation (TIFF tag 274) -> the turn a browser applies before showing the pixels.
ORIENTATION_TAG = 0x0112
TRANSPOSE = {
    2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
    3: PIL.Image.Transpose.ROTATE_180,
    4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
    5: PIL.Image.Transpose.TRANSPOSE,
    6: PIL.Image.Transpose.ROTATE_270,
    7: PIL.Image.Transpose.TRANSVERSE,
    8: PIL.Image.Transpose.ROTATE_90,
}
ORIENTATIONS = {
    2: "mirrored left to right",
    3: "turned 180°",
    4: "mirrored top to bottom",
    5: "mirrored and turned 90° anticlockwise",
    6: "turned 90° clockwise",
    7: "mirrored and turned 90° clockwise",
    8: "turned 90° anticlockwise",
}
# Stands for a mask pixel that is exactly none of the convention's colours (black, red, green).
OFF_COLOUR = (128, 128, 128)
NOT_READ = "mask not read (never a Normal consensus): image imported without a layer (status new), to be drawn"


def orientation_of(img: PIL.Image.Image) -> int:
    """The EXIF orientation browsers apply to a PNG (1: none); ValueError if it cannot be known."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception as e:  # noqa: BLE001 - Pillow raises several types on damaged EXIF
        raise ValueError(f"unreadable EXIF metadata, so its orientation is unknown ({type(e).__name__})") from None
    return value if isinstance(value, int) and value in TRANSPOSE else 1


def _upright(
    name: str, img: PIL.Image.Image, data: bytes, orientation: int, report: ImportReport
) -> tuple[PIL.Image.Image, bytes]:
    """The image as browsers show it, re-encoded without the orientation tag when it had one.

    The server, the masks and the contours use the stored pixel grid; a browser turns a PNG by
    its eXIf orientation, so a reader would draw on a turned picture. Stored upright, both agree.
    """
    if orientation == 1:
        return img, data
    upright = PIL.ImageOps.exif_transpose(img)
    extra = {"transparency": upright.info["transparency"]} if "transparency" in upright.info else {}
    buf = io.BytesIO()
    upright.save(buf, format="PNG", **extra)  # no exif=...: the stored PNG carries no orientation
    report.defect(
        name,
        f"PNG orientation tag {orientation}: browsers show it {ORIENTATIONS[orientation]}",
        "pixels turned the way browsers show them; stored without the tag",
    )
    return upright, buf.getvalue()


def _import_one(name, source: Source, row, as_status, author, annotator, actor, report: ImportReport) -> str:
    match = NAME_RE.match(name)
    if not match:
        report.defect(name, "name does not follow XXXX_YYY.png (4 capital letters, number)", "skipped")
        return "failed"
    try:
        data = source.images[name]()
        img = decode_png(data)
        image_orientation = orientation_of(img)
    except ValueError as e:
        report.defect(name, str(e), "skipped")
        return "failed"
    # The checksum is of the file as given, so re-importing it is recognised even if it was turned.
    checksum = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(name=name).values_list("checksum", flat=True).first()
    if existing is not None:
        if existing == checksum:
            return "unchanged"
        report.defect(name, "an image with this name but different content is already stored", "skipped")
        return "failed"
    img, data = _upright(name, img, data, image_orientation, report)
    width, height = img.size
    if img.mode not in ("RGB", "L"):
        report.defect(name, f"image is {img.mode}, not RGB", "stored as is; masks use its size")
    if row and row["resolution"] and row["resolution"] != f"{width}x{height}":
        report.defect(
            name, f"INFO.csv Resolution {row['resolution']} but the image is {width}x{height}", "image size used"
        )

    mask = _read_mask(name, source, (width, height), image_orientation, row, report)
    content = mask.content if mask else None
    status = as_status
    if mask and mask.doubts and as_status == Status.APPROVED:
        # What the import had to guess is never ground truth: a reviewer decides.
        status = Status.SUBMITTED
        report.defect(
            f"masks/{name}",
            "not approved as imported: " + "; ".join(mask.doubts),
            "layer imported for review (submitted)",
        )
    if content is None and row and row["label"] == "normal" and not source.masks:
        content = workflow.LayerContent(lesions=[], is_normal=True)
    if content is not None and row:
        content.doppler, content.marks, content.combined = row["doppler"], row["marks"], row["combined"]

    with transaction.atomic():
        patient, _ = Patient.objects.get_or_create(code=match.group(1))
        image = Image(
            patient=patient,
            name=name,
            number=int(match.group(2)),
            width=width,
            height=height,
            checksum=checksum,
            doppler=bool(row and row["doppler"]),
            marks=bool(row and row["marks"]),
            combined=bool(row and row["combined"]),
            pixel_spacing_mm=row["spacing"] if row else None,
        )
        image.full_clean(exclude=["consensus", "annotator"])
        image.save()
        ImageData.objects.create(image=image, png=data)
        workflow.create_imported(
            image=image, content=content, as_status=status, author=author, annotator=annotator, actor=actor
        )
    return "imported"


@dataclass
class ImportedMask:
    content: workflow.LayerContent
    doubts: list[str]  # what the import had to guess; a layer with doubts is never approved as imported


def mask_rgb(mask: PIL.Image.Image, data: bytes) -> tuple[np.ndarray, str]:
    """The mask as 8-bit RGB in which exactly the file's black, red and green pixels are those colours.

    Returns (rgb, hint); the hint names a kind of file that cannot carry the colours at all.
    Pillow's own conversions are not exact for these: a grayscale 0/255 mask has no colour, and
    16-bit PNGs are cut to their high byte (a 16-bit 255 would read as black), so 16-bit files
    are decoded by OpenCV and only values that are exact 8-bit levels (v * 257) keep their colour.
    """
    depth, colour_type = (data[24], data[25]) if data[12:16] == b"IHDR" else (8, 2)  # IHDR comes first
    grayscale = colour_type in (0, 4)  # with or without alpha: no pixel can be red or green
    if depth == 16:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None or pixels.dtype != np.uint16:
            raise ValueError("16-bit mask that OpenCV cannot decode")
        if grayscale:
            plane = pixels if pixels.ndim == 2 else pixels[..., 0]
        else:
            wide = pixels[..., 2::-1]  # OpenCV's BGR(A) -> RGB
            rgb = (wide // 257).astype(np.uint8)
            rgb[~(wide % 257 == 0).all(axis=-1)] = OFF_COLOUR
            return rgb, ""
    elif grayscale:
        plane = np.asarray(mask.convert("L"))
    else:
        return np.asarray(mask.convert("RGB")), ""  # palette lookups and 8-bit colour are exact
    rgb = np.zeros((*plane.shape, 3), np.uint8)
    rgb[plane != 0] = OFF_COLOUR
    return rgb, f" (a {depth}-bit grayscale mask, e.g. 0/255, has no benign/malignant colour)"


def _turn(rgb: np.ndarray, orientation: int) -> np.ndarray:
    return np.asarray(PIL.Image.fromarray(rgb).transpose(TRANSPOSE[orientation]))


def _mask_grid(
    raw: np.ndarray, orientation: int, image_orientation: int, size: tuple[int, int], where: str, report: ImportReport
) -> tuple[np.ndarray, list[str]]:
    """The mask on the upright image's grid, and the doubts about which grid it was drawn on.

    Each PNG is read the way browsers show it (its own orientation applied), as a person pairing
    image and mask in a viewer saw them. When the image and its mask carry different tags, the
    pairing is a guess: the first reading that fits the image's size is taken (as browsers show
    the mask, as the file stores it, or turned like its image: a mask drawn on the image's stored
    grid), and the layer goes for review.
    """
    shown = _turn(raw, orientation) if orientation != 1 else raw
    if orientation != 1:
        report.defect(
            where, f"PNG orientation tag {orientation}", f"mask {ORIENTATIONS[orientation]}, as browsers show it"
        )
    if image_orientation == orientation:
        return shown, []
    readings = [("mask used as browsers show it", shown), ("mask used as the file stores it, its tag ignored", raw)]
    if image_orientation != 1:
        readings.append((f"mask {ORIENTATIONS[image_orientation]} like its image", _turn(raw, image_orientation)))
    action, rgb = next(((a, r) for a, r in readings if (r.shape[1], r.shape[0]) == size), readings[0])
    report.defect(where, f"mask has orientation tag {orientation} but its image {image_orientation} (1: none)", action)
    return rgb, ["the image and its mask carried different orientation tags, so the mask's grid is a guess"]


def _read_mask(name, source: Source, size, image_orientation: int, row, report: ImportReport) -> ImportedMask | None:
    loader = source.masks.get(name)
    if loader is None:
        if source.masks:
            report.defect(name, "no mask in masks/", "imported without a layer (status new)")
        return None
    where = f"masks/{name}"
    try:
        data = loader()
        mask = decode_png(data)
        orientation = orientation_of(mask)
        rgb, hint = mask_rgb(mask, data)
    except ValueError as e:
        report.defect(where, str(e), "imported without a layer (status new)")
        return None
    rgb, doubts = _mask_grid(rgb, orientation, image_orientation, size, where, report)
    width, height = size
    if (rgb.shape[1], rgb.shape[0]) != size:
        message = f"mask is {rgb.shape[1]}x{rgb.shape[0]} but the image is {width}x{height}"
        report.defect(where, message, "mask resized to the image size (nearest neighbour)")
        doubts.append(f"{message}: stretched, so the outlines may sit off the lesions")
        rgb = np.asarray(PIL.Image.fromarray(rgb).resize(size, PIL.Image.Resampling.NEAREST))
    reading = geometry.extract_lesions(rgb)
    other = f"{reading.other_pixels} pixels are neither black, red nor green{hint}"
    specks = f"{len(reading.dropped_specks)} red or green specks too thin to outline"
    if not reading.lesions and (reading.other_pixels or reading.dropped_specks):
        problems = [p for p, n in ((other, reading.other_pixels), (specks, reading.dropped_specks)) if n]
        report.defect(where, "; ".join(problems) + "; no lesion in red or green", NOT_READ)
        return None
    limit = _max_lesions()
    if len(reading.lesions) > limit:
        report.defect(where, f"{len(reading.lesions)} lesions; at most {limit} per image", NOT_READ)
        return None
    if reading.other_pixels:
        report.defect(where, other, "treated as background")
        doubts.append(other)
    for label, x, y, area in reading.dropped_specks:
        report.defect(where, f"{label} speck of {area} px at ({x}, {y}) is too thin to outline", "dropped")
    if reading.dropped_specks:
        doubts.append(f"{len(reading.dropped_specks)} specks too thin to outline were dropped")
    found = geometry.label_of(reading.lesions).lower()
    if row and row["label"] and row["label"] != found:
        report.defect(
            where, f"INFO.csv says {row['label'].capitalize()} but the mask shows {found.capitalize()}", "mask used"
        )
    return ImportedMask(workflow.LayerContent(lesions=reading.lesions, is_normal=not reading.lesions), doubts)
