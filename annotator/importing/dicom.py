"""DICOM ultrasound files: de-identified by construction, calibrated, cropped, held for redaction.

Per file: ``read_dicom`` checks the header (limits from settings; US only unless the curator
allows other modalities), the chosen frame(s) are decoded (the key frame by default, never all
frames unless asked), cropped to the 2D tissue region with everything outside the regions blacked
out, stored as 8-bit RGB PNGs named
``XXXX_YYY.png`` in acquisition order. The database keeps only the allow-listed header summary, the
X/Y spacing and its source, the crop offset, the detected boxes and two keyed hashes (patient and
SOP instance; the key is ``settings.PATIENT_KEY_SECRET``, outside the database). Every image enters
the ``redaction`` status, which no reader sees, until a curator confirms its black boxes; the
burned-in text search (tesseract: boxes, never text) is queued after the import
(``annotator.text_search``) and must have run before the curator can confirm.

Report rows and errors carry the file's name in the source and the DICOM layer's safe messages,
never a header value; unexpected errors are reported by type only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from annotator import dicom, redaction, text_search, workflow
from annotator.exporting.base import encode_png
from annotator.models import Image, ImageData, Patient, PatientKey

from .base import FRAMES_ALL, FRAMES_KEY, ImportOptions, ImportRefused, ImportReport, Loader, Source

logger = logging.getLogger(__name__)

NO_SECRET = (
    "DICOM import is refused: PATIENT_KEY_SECRET is not set. It keys the hashes that give a returning "
    "patient the same code; set it (at least 16 bytes, kept outside the database) and try again."
)


def patient_secret(*, warn: bool = True) -> bytes:
    """The HMAC key; ImportRefused without one (DEBUG off), a warning with the development default."""
    value = getattr(settings, "PATIENT_KEY_SECRET", "") or ""
    if not value:
        raise ImportRefused(NO_SECRET)
    if warn and value == getattr(settings, "DEV_PATIENT_KEY_SECRET", None):
        logger.warning("DICOM import with the development PATIENT_KEY_SECRET: set your own before real data")
    return value.encode()


def check_ready(options: ImportOptions) -> None:
    """Refuse the whole import before anything is written when DICOM cannot be imported safely."""
    patient_secret(warn=False)


@dataclass
class FileRow:
    """One line of the import report for one DICOM file (numbers and safe messages only)."""

    file: str
    outcome: str = "failed"  # imported | unchanged | failed
    images: list[str] = field(default_factory=list)
    frame_count: int | None = None
    frames: list[int] = field(default_factory=list)  # 1-based, as DICOM numbers frames
    spacing_x_mm: float | None = None
    spacing_y_mm: float | None = None
    spacing_source: str = ""
    crop: list[int] | None = None  # (left, top, right, bottom), right and bottom exclusive
    text_boxes: int | None = 0  # None: the search is queued
    doppler_suggested: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        if self.outcome == "failed":
            return f"{self.file}: failed: {self.error}"
        spacing = (
            f"{self.spacing_x_mm:.4g} x {self.spacing_y_mm:.4g} mm/px from {self.spacing_source}"
            if self.spacing_x_mm
            else "no spacing"
        )
        crop = f"crop {self.crop}" if self.crop else "not cropped"
        frames = ",".join(map(str, self.frames))
        return (
            f"{self.file}: {self.outcome} as {', '.join(self.images)}; frame(s) {frames} of {self.frame_count}; "
            f"{spacing}; {crop}; "
            + ("text search queued" if self.text_boxes is None else f"{self.text_boxes} text box(es)")
            + ("; Doppler suggested" if self.doppler_suggested else "")
            + "".join(f"; {n}" for n in self.notes)
        )


def _read(data: bytes, options: ImportOptions):
    ds = dicom.read_dicom(
        data,
        allow_modalities=options.allow_modalities,
        max_pixels=settings.DICOM_MAX_PIXELS,
        max_frames=settings.DICOM_MAX_FRAMES,
    )
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows * columns > settings.MAX_IMAGE_PIXELS:
        raise dicom.DicomError(
            "too_large", f"A frame of {columns} x {rows} pixels exceeds the limit of {settings.MAX_IMAGE_PIXELS}."
        )
    return ds


def frames_to_import(option: str | list[int], ds) -> list[int]:
    """The 0-based frames the option asks for: the key frame, all, or the listed 1-based numbers."""
    total = dicom.frame_count(ds)
    if option == FRAMES_KEY or option is None:
        return [dicom.key_frame_index(ds)]
    if option == FRAMES_ALL:
        return list(range(total))
    wanted = sorted(set(option))
    missing = [n for n in wanted if not 1 <= n <= total]
    if missing:
        raise dicom.DicomError(
            "frame_index", f"There is no frame {missing[0]}: the file has {total} frame(s), numbered 1 to {total}."
        )
    return [n - 1 for n in wanted]


@dataclass
class _Candidate:
    where: str
    loader: Loader
    order: dicom.AcquisitionOrder
    row: FileRow


def _fail(report: ImportReport, row: FileRow, message: str) -> None:
    row.outcome, row.error = "failed", message
    report.failed.append(row.file)
    report.defect(row.file, message, "skipped")


def import_dicoms(
    source: Source,
    report: ImportReport,
    *,
    options: ImportOptions,
    actor,
    progress: Callable[[int, int, str], None] | None = None,
) -> None:
    """Import the source's DICOM files into ``report`` (rows in ``report.files``)."""
    key = patient_secret()
    candidates: list[_Candidate] = []
    rows: dict[str, FileRow] = {}
    # Pass 1 reads headers only, to number each patient's images in acquisition order across files.
    for where in sorted(source.dicoms):
        row = rows[where] = FileRow(where)
        try:
            ds = _read(source.dicoms[where](), options)
            row.frame_count = dicom.frame_count(ds)
            row.frames = [i + 1 for i in frames_to_import(options.frames, ds)]
            candidates.append(_Candidate(where, source.dicoms[where], dicom.acquisition_order(ds), row))
        except ValueError as e:  # DicomError (safe messages) or the loader's size/ZIP errors (ours)
            _fail(report, row, str(e))
        except Exception as e:  # noqa: BLE001 - one bad file must never stop the rest; no message (may quote values)
            _fail(report, row, f"unexpected error ({type(e).__name__})")
    candidates.sort(key=lambda c: (c.order, c.where))
    for i, candidate in enumerate(candidates, start=1):
        if progress:
            progress(i, len(candidates), candidate.where)
        row = candidate.row
        try:
            _import_file(candidate, key, options, actor, report)
        except ValueError as e:
            _fail(report, row, str(e))
        except Exception as e:  # noqa: BLE001
            _fail(report, row, f"unexpected error ({type(e).__name__})")
    _search_text(rows.values())
    report.files.extend(rows[where] for where in sorted(rows))


def _search_text(rows) -> None:
    """Queue (or, inline, run) the burned-in text search of the images just imported."""
    imported = [row for row in rows if row.outcome == "imported"]
    ids = dict(Image.objects.filter(name__in=[n for row in imported for n in row.images]).values_list("name", "pk"))
    found = text_search.queue(list(ids.values()))
    for row in imported:
        if found is None:
            row.text_boxes = None
            continue
        counts = [found.get(ids[name]) for name in row.images if name in ids]
        if text_search.UNAVAILABLE in counts:
            row.notes.append("text detection unavailable: no boxes proposed, check the image by eye")
        row.text_boxes = sum(c for c in counts if c and c > 0)


@dataclass
class _Frame:
    index: int
    png: bytes
    width: int
    height: int
    doppler: bool
    summary: dict


def _instance_key(ds, data: bytes, key: bytes) -> str:
    """The SOP instance's keyed hash; a file without a SOP Instance UID is keyed by its bytes."""
    found = dicom.instance_key(ds, key)
    return found or hmac.new(key, b"file\x1f" + hashlib.sha256(data).digest(), hashlib.sha256).hexdigest()


def _prepare(ds, index: int, cal: dicom.Calibration, keep: list[tuple[int, int, int, int]], row: FileRow) -> _Frame:
    rgb = dicom.decode_frame(ds, index)
    offset = None
    if cal.crop:
        left, top, right, bottom = cal.crop
        rgb, offset = redaction.crop_to_region(rgb, (left, top, right - 1, bottom - 1))
        rgb = redaction.blank_outside(rgb, keep, offset)
    # The burned-in text search runs after the import (annotator.text_search), not here.
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return _Frame(
        index=index,
        # Level 1: a speckled scan barely compresses better at higher levels, at twice the time.
        png=encode_png(rgb, level=1),
        width=width,
        height=height,
        doppler=dicom.has_colour(rgb),
        summary=dicom.header_summary(ds, frame_index=index),
    )


def _import_file(candidate: _Candidate, key: bytes, options: ImportOptions, actor, report: ImportReport) -> None:
    row = candidate.row
    data = candidate.loader()
    ds = _read(data, options)
    instance = _instance_key(ds, data, key)
    indexes = [n - 1 for n in row.frames]
    cal = dicom.calibration(ds)
    row.spacing_x_mm, row.spacing_y_mm, row.spacing_source = cal.spacing_x_mm, cal.spacing_y_mm, cal.source
    row.crop = list(cal.crop) if cal.crop else None
    if cal.note:
        row.notes.append(cal.note)
    stored = dict(
        Image.objects.filter(source_key=instance, source_frame__in=indexes).values_list("source_frame", "name")
    )
    todo = [i for i in indexes if i not in stored]
    if not todo:
        row.outcome, row.images = "unchanged", [stored[i] for i in indexes]
        report.unchanged.extend(row.images)
        return
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    keep = [(r.min_x0, r.min_y0, r.max_x1, r.max_y1) for r in dicom.regions(ds) if r.fits(columns, rows)]
    # Every frame is decoded and encoded before anything is written: a frame that fails leaves nothing.
    frames = [_prepare(ds, i, cal, keep, row) for i in todo]
    patient_hash = dicom.patient_key(ds, key)
    del ds, data
    with transaction.atomic():
        patient = _patient(patient_hash)
        number = _next_number(patient)
        for offset, frame in enumerate(frames):
            image = _new_image(patient, number + offset, frame, cal, instance, options)
            workflow.import_for_redaction(image=image, actor=actor)
            ImageData.objects.create(image=image, png=frame.png)
            row.images.append(image.name)
            row.doppler_suggested |= frame.doppler
    report.imported.extend(row.images)
    row.outcome = "imported"
    row.images = [stored[i] for i in indexes if i in stored] + row.images


# A transaction-level advisory lock: two imports that meet the same new patient at once take turns,
# so the second finds the first's key instead of failing on the unique code.
PATIENT_LOCK = 0x4255_5350  # "BUSP"


def _patient(patient_hash: str | None) -> Patient:
    """The patient of this source identity (same key, same code), or a new one with a fresh code."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PATIENT_LOCK])
    if patient_hash:
        found = PatientKey.objects.select_related("patient").filter(key=patient_hash).first()
        if found is not None:
            return Patient.objects.select_for_update(no_key=True).get(pk=found.patient_id)
    taken = set(Patient.objects.values_list("code", flat=True))
    # Without an identity in the file, nothing can join it to another file: a code from randomness.
    code = dicom.patient_code(patient_hash or secrets.token_hex(32), taken)
    patient = Patient.objects.create(code=code)
    if patient_hash:
        PatientKey.objects.create(key=patient_hash, patient=patient)
    return patient


def _next_number(patient: Patient) -> int:
    """After the patient's existing numbers (BUS-UCLM numbers a patient's images from 000)."""
    highest = Image.objects.filter(patient=patient).aggregate(n=Max("number"))["n"]
    return 0 if highest is None else highest + 1


def _new_image(
    patient: Patient, number: int, frame: _Frame, cal: dicom.Calibration, instance: str, options: ImportOptions
) -> Image:
    sx, sy = cal.spacing_x_mm, cal.spacing_y_mm
    left, top = (cal.crop[0], cal.crop[1]) if cal.crop else (None, None)
    image = Image(
        patient=patient,
        name=f"{patient.code}_{number:03d}.png",
        number=number,
        width=frame.width,
        height=frame.height,
        checksum=hashlib.sha256(frame.png).hexdigest(),
        doppler=frame.doppler,
        pixel_spacing_x_mm=sx,
        pixel_spacing_y_mm=sy,
        pixel_spacing_mm=math.sqrt(sx * sy) if sx and sy else None,
        spacing_source=cal.source,
        crop_x=left,
        crop_y=top,
        acquisition=frame.summary,
        source_key=instance,
        source_frame=frame.index,
        text_boxes=None,  # searched after the import
        annotator=options.annotator,
    )
    # Field checks only: the name and number come from this module, and the database's unique and
    # check constraints hold anyway (Django's constraint validation would cost a query each).
    image.full_clean(exclude=["consensus", "annotator", "status"], validate_unique=False, validate_constraints=False)
    return image
