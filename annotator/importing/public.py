"""What the public breast-ultrasound datasets' importers share: storing an image under a
BUS-UCLM-style name, reading binary lesion masks, and telling the layouts apart.

Each dataset has its own module (``busi``, ``breast``, ``busbra``) that reads its published layout
into ``PublicImage`` records, reporting every defect it meets; ``store`` then imports each record
the way the BUS-UCLM import does (one transaction per image, a layer with doubts is never approved
as imported, re-importing the same files changes nothing).

Names: the source patient (BUS-BRA's Case, BrEaST's CaseID; for BUSI, which has no patient IDs,
each image is its own pseudo-patient) gets a four-letter code derived from a hash of the dataset
and the patient (``PatientKey``), so a re-import or a second image of the patient finds the same
code, and patients of two datasets are never merged. The image is ``CODE_NNN.png``; the dataset,
the file's name in the release and the licence are kept on the image (``source_*``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import PIL.Image
from django.db import transaction

from annotator import geometry, workflow
from annotator.models import Image, ImageData, Status

from . import dicom as dicom_import
from .base import ImportOptions, ImportReport, Source
from .bus_uclm import NOT_READ, ORIENTATIONS, TRANSPOSE, _upright, decode_png, orientation_of


@dataclass
class Dataset:
    key: str  # the import option's value
    title: str  # the name kept on each image (source_dataset) and written in sources.csv
    licence: str
    read: Callable[[Source, ImportReport], list[PublicImage]]
    recognise: Callable[[Source], bool]


# key -> Dataset, filled by each dataset module as the package imports it.
DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    DATASETS[dataset.key] = dataset
    return dataset


def detect(source: Source) -> Dataset | None:
    """The public dataset whose published layout the source's files follow, if any."""
    return next((d for d in DATASETS.values() if d.recognise(source)), None)


@dataclass
class MaskFile:
    """One lesion mask file: each foreground region in it is one lesion of ``label``."""

    path: str
    loader: Callable[[], bytes]


@dataclass
class PublicImage:
    """One image as a dataset module read it, before storing."""

    path: str  # the file's path in the source (shown in the report)
    source_file: str  # the file's name in the published release (kept on the image)
    loader: Callable[[], bytes]
    patient: str  # the source's patient identity (namespaced by dataset when stored)
    # "benign", "malignant" or "normal"; "" when the dataset does not say (then no layer is made)
    label: str
    masks: list[MaskFile] = field(default_factory=list)
    spacing_mm: float | None = None
    metadata: dict = field(default_factory=dict)
    # Descriptors per lesion as stored on Lesion.descriptors (BrEaST), and the image's assessment.
    descriptors: dict = field(default_factory=dict)
    assessment: str = ""
    stored_as: str = ""  # the image's name once stored


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(("public", *parts)).encode()).hexdigest()


def import_public(
    dataset: Dataset, source: Source, report: ImportReport, *, options: ImportOptions, actor, author, progress=None
) -> None:
    """Read ``source`` as ``dataset`` and store what can be stored; the caller holds no_query_log."""
    records = dataset.read(source, report)
    seen: dict[str, str] = {}  # pixel hash -> path of the first image with those pixels
    for i, record in enumerate(records, start=1):
        if progress:
            progress(i, len(records), record.path)
        try:
            outcome = _store(dataset, record, report, options, actor, author, seen)
        except Exception as e:  # noqa: BLE001 - one bad file must never stop the rest
            report.defect(record.path, f"unexpected error: {type(e).__name__}: {e}", "skipped")
            outcome = "failed"
        # Imported images are listed by their new name; the rest by their path in the source.
        getattr(report, outcome).append(record.stored_as if outcome == "imported" else record.path)


def _store(dataset, record: PublicImage, report, options: ImportOptions, actor, author, seen) -> str:
    try:
        data = record.loader()
        img = decode_png(data)
        orientation = orientation_of(img)
    except ValueError as e:
        report.defect(record.path, str(e), "skipped")
        return "failed"
    checksum = hashlib.sha256(data).hexdigest()
    # Known quirk (BUSI): the same picture under two names, even in two classes. Kept once: a
    # duplicate would sit in two folds of a split and leak between training and test. Looked for
    # before the re-import check, so a re-import skips the same duplicates as the first import.
    pixels = hashlib.sha256(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()
    if pixels in seen:
        report.defect(record.path, f"the same pixels as {seen[pixels]}", "skipped (duplicate)")
        return "failed"
    seen[pixels] = record.path
    source_key = _key(dataset.key, "file", record.source_file)
    existing = Image.objects.filter(source_key=source_key).values_list("checksum", "name").first()
    if existing is not None:
        if existing[0] == checksum:
            return "unchanged"
        report.defect(record.path, f"already imported as {existing[1]} with different content", "skipped")
        return "failed"
    same = Image.objects.filter(checksum=checksum).values_list("name", flat=True).first()
    if same is not None:
        report.defect(record.path, f"the same file is already stored as {same}", "skipped (duplicate)")
        return "failed"
    img, data = _upright(record.path, img, data, orientation, report)
    size = img.size
    content, doubts = _content(record, size, orientation, report)
    status = options.as_status
    if content is not None and doubts and status == Status.APPROVED:
        status = Status.SUBMITTED
        report.defect(record.path, "not approved as imported: " + "; ".join(doubts), "layer imported for review")
    sx = record.spacing_mm
    with transaction.atomic():
        patient = dicom_import._patient(_key(dataset.key, "patient", record.patient))
        number = dicom_import._next_number(patient)
        image = Image(
            patient=patient,
            name=f"{patient.code}_{number:03d}.png",
            number=number,
            width=size[0],
            height=size[1],
            checksum=checksum,
            pixel_spacing_mm=sx,
            pixel_spacing_x_mm=sx,
            pixel_spacing_y_mm=sx,
            spacing_source=f"{dataset.title} spreadsheet" if sx else "",
            source_key=source_key,
            source_frame=0,
            source_dataset=dataset.title,
            source_file=record.source_file,
            source_licence=dataset.licence,
            source_metadata=record.metadata,
        )
        image.full_clean(
            exclude=["consensus", "annotator", "status"], validate_unique=False, validate_constraints=False
        )
        image.save()
        ImageData.objects.create(image=image, png=data)
        layer = workflow.create_imported(
            image=image,
            content=content,
            as_status=status,
            author=author,
            annotator=options.annotator,
            actor=actor,
        )
        if layer is not None and (record.descriptors or record.assessment):
            apply_descriptors(layer, record)
    record.stored_as = image.name
    return "imported"


def apply_descriptors(layer, record: PublicImage) -> None:
    """Store a dataset's BI-RADS descriptors (already in the lexicon's canonical form) on every
    lesion of the imported layer (BrEaST: the one tumour mask), and the image's assessment."""
    if record.descriptors:
        layer.lesions.update(descriptors=record.descriptors)
    if record.assessment:
        layer.assessment = record.assessment
        layer.save(update_fields=["assessment"])


def _content(record: PublicImage, size, image_orientation: int, report: ImportReport):
    """The layer to import (or None: the image stays new, to be drawn) and the doubts about it."""
    doubts: list[str] = []
    if not record.label:
        return None, doubts
    lesions: list[geometry.Lesion] = []
    foreground = False
    for mask in record.masks:
        plane = read_binary_mask(mask, size, image_orientation, report, doubts)
        if plane is None:
            return None, doubts
        if not plane.any():
            continue
        foreground = True
        if record.label == "normal":
            continue
        rgb = np.zeros((*plane.shape, 3), np.uint8)
        rgb[plane] = geometry.COLOURS[record.label]
        reading = geometry.extract_lesions(rgb)
        for _label, x, y, area in reading.dropped_specks:
            report.defect(mask.path, f"speck of {area} px at ({x}, {y}) is too thin to outline", "dropped")
        if reading.dropped_specks:
            doubts.append(f"{len(reading.dropped_specks)} specks too thin to outline were dropped")
        lesions.extend(reading.lesions)
    if record.label == "normal":
        if foreground:
            report.defect(record.path, "class normal but its mask marks a region", NOT_READ)
            return None, doubts
        return workflow.LayerContent(lesions=[], is_normal=True), doubts
    if not record.masks:
        report.defect(record.path, f"class {record.label} but no lesion mask", NOT_READ)
        return None, doubts
    if not lesions:
        report.defect(record.path, f"class {record.label} but its masks are empty", NOT_READ)
        return None, doubts
    if len(lesions) > geometry.MAX_LESIONS:
        report.defect(record.path, f"{len(lesions)} lesions; at most {geometry.MAX_LESIONS} per image", NOT_READ)
        return None, doubts
    return workflow.LayerContent(lesions=lesions, is_normal=False), doubts


def read_binary_mask(mask: MaskFile, size, image_orientation: int, report, doubts: list[str]) -> np.ndarray | None:
    """A binary (0/255) mask as a boolean plane on the image's grid; None if it cannot be read.

    Accepted as is: 8-bit greyscale, 1-bit, and RGB(A) whose channels are equal (greyscale saved
    as colour). Reported: colour masks (the brightest channel is used), values other than 0 and the
    maximum (thresholded at half; 0/1 masks are read as 0/255), 16-bit masks, orientation tags and
    a size other than the image's (resized, nearest neighbour). Numpy throughout: no pixel loops.
    """
    try:
        img = decode_png(mask.loader())
        orientation = orientation_of(img)
    except ValueError as e:
        report.defect(mask.path, str(e), NOT_READ)
        return None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        plane = (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)
        report.defect(mask.path, f"{img.mode} mask, not 8-bit", "read as 8-bit (high byte)")
    elif img.mode in ("L", "1"):
        plane = np.asarray(img.convert("L"))
    elif img.mode == "LA":
        plane = np.asarray(img)[..., 0]
    else:
        rgb = np.asarray(img.convert("RGB"))
        plane = rgb.max(axis=-1)
        if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
            report.defect(mask.path, "colour mask (channels differ), not greyscale", "brightest channel used")
    if orientation != 1:
        plane = np.asarray(PIL.Image.fromarray(plane).transpose(TRANSPOSE[orientation]))
        report.defect(mask.path, f"PNG orientation tag {orientation}", f"mask {ORIENTATIONS[orientation]}")
    top = int(plane.max()) if plane.size else 0
    if top == 1:
        binary = plane > 0
    else:
        binary = plane >= 128
        stray = int(np.count_nonzero((plane != 0) & (plane != 255)))
        if stray:
            message = f"{stray} pixels are neither 0 nor 255"
            report.defect(mask.path, message, "thresholded at 128")
            doubts.append(f"{PurePosixPath(mask.path).name}: {message}")
    height, width = binary.shape
    if (width, height) != tuple(size):
        message = f"mask is {width}x{height} but the image is {size[0]}x{size[1]}"
        report.defect(mask.path, message, "mask resized to the image size (nearest neighbour)")
        doubts.append(f"{PurePosixPath(mask.path).name}: {message}")
        resized = PIL.Image.fromarray(binary.astype(np.uint8) * 255).resize(size, PIL.Image.Resampling.NEAREST)
        binary = np.asarray(resized) >= 128
    return binary


# --- helpers the dataset modules share --------------------------------------------------------


def by_name(source: Source) -> dict[str, list[str]]:
    """File name (case-folded) -> the paths that have it, for layouts referring to files by name."""
    names: dict[str, list[str]] = {}
    for path in source.files:
        names.setdefault(PurePosixPath(path).name.casefold(), []).append(path)
    return names


def split_values(value) -> list[str]:
    """A spreadsheet cell's values: several are separated by '&' in the published sheets."""
    if value is None:
        return []
    return [v.strip() for v in re.split(r"[&;]", str(value)) if v.strip()]


def as_spacing(value, where: str, column: str, report: ImportReport) -> float | None:
    """A pixel size in mm, or None (reported) when it is missing or not a plausible size."""
    if value is None or str(value).strip() == "":
        return None
    try:
        spacing = float(str(value).strip().replace(",", "."))
        if not (0 < spacing < 10):
            raise ValueError
    except ValueError:
        report.defect(where, f"{column} is {value!r}, not a size in mm", "no pixel spacing stored")
        return None
    return spacing
