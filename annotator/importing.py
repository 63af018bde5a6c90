"""Import ultrasound images (and optional masks and INFO.csv) in the BUS-UCLM layout.

A source is a folder, a ZIP, or uploaded files. Every defect met is reported (file, problem,
what was done); everything that can be imported is; each image goes in its own transaction so
nothing is ever half-written; re-importing the same files changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import PIL.Image
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotator import geometry, permissions, workflow
from annotator.models import Image, ImageData, Patient, Status

NAME_RE = re.compile(r"^([A-Z]{4})_(\d{3,})\.png$")
YES = {"yes": True, "no": False}
LENIENT_YES = {"y": True, "n": False, "true": True, "false": False, "1": True, "0": False, "si": True, "sí": True}
LABELS = {"normal", "benign", "malignant"}
IMPORTER_USERNAME = "importer"

Loader = Callable[[], bytes]


class ImportRefused(Exception):
    """The whole source is unusable (not a ZIP, too large...): nothing was imported."""

    def __init__(self, message: str, http_status: int = 400):
        super().__init__(message)
        self.http_status = http_status


@dataclass
class Defect:
    file: str
    problem: str
    action: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem} -> {self.action}"


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)

    def defect(self, file: str, problem: str, action: str) -> None:
        self.defects.append(Defect(file, problem, action))

    def as_dict(self) -> dict:
        return {
            "imported": len(self.imported),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
            "imported_names": self.imported,
            "failed_names": self.failed,
            "defects": [d.__dict__ for d in self.defects],
        }


@dataclass
class Source:
    images: dict[str, Loader] = field(default_factory=dict)
    masks: dict[str, Loader] = field(default_factory=dict)
    info_csv: Loader | None = None
    info_name: str = "INFO.csv"
    problems: list[Defect] = field(default_factory=list)


# --- reading sources --------------------------------------------------------------------------


def _classify(path: PurePosixPath, loader: Loader, source: Source, where: str) -> None:
    parts = path.parts
    if path.is_absolute() or ".." in parts:
        source.problems.append(Defect(where, "unsafe path in archive", "skipped"))
        return
    name = path.name
    if name.startswith(".") or "__MACOSX" in parts:
        return
    if name.lower() == "info.csv":
        source.info_csv = loader
        source.info_name = where
    elif name.lower().endswith(".png"):
        target = source.masks if len(parts) > 1 and parts[-2].lower() == "masks" else source.images
        if name in target:
            source.problems.append(Defect(where, f"a second file named {name}", "skipped; the first one is used"))
        else:
            target[name] = loader
    else:
        source.problems.append(Defect(where, "not a PNG image or INFO.csv", "skipped"))


def _capped(read: Callable[[], bytes], declared: int, where: str) -> Loader:
    def load() -> bytes:
        if declared > settings.MAX_IMAGE_BYTES:
            raise ValueError(f"file is {declared} bytes; the limit is {settings.MAX_IMAGE_BYTES}")
        data = read()
        if len(data) > settings.MAX_IMAGE_BYTES:
            raise ValueError(f"file is larger than the limit of {settings.MAX_IMAGE_BYTES} bytes")
        return data

    return load


def folder_source(root: Path) -> Source:
    if not root.exists():
        raise ImportRefused(f"{root} does not exist")
    if root.is_file():
        return zip_source(root)
    source = Source()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        _classify(rel, _capped(path.read_bytes, path.stat().st_size, str(rel)), source, str(rel))
    return source


def zip_source(file) -> Source:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImportRefused(f"not a readable ZIP archive ({e})") from None
    source = Source()
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename)

        def read(info=info) -> bytes:
            with archive.open(info) as fh:
                return fh.read(settings.MAX_IMAGE_BYTES + 1)

        _classify(path, _capped(read, info.file_size, info.filename), source, info.filename)
    return source


def uploads_source(images: Iterable, masks: Iterable = (), info_csv=None) -> Source:
    """Files uploaded from the browser (Django UploadedFile objects)."""
    source = Source()
    for files, target in ((images, source.images), (masks, source.masks)):
        for f in files:
            name = PurePosixPath(f.name).name
            if not name.lower().endswith(".png"):
                source.problems.append(Defect(name, "not a PNG image", "skipped"))
                continue
            target[name] = _capped(f.read, f.size, name)
    if info_csv is not None:
        source.info_csv = _capped(info_csv.read, info_csv.size, info_csv.name)
        source.info_name = info_csv.name
    return source


# --- decoding and checking --------------------------------------------------------------------


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


def read_info_csv(data: bytes, where: str, report: ImportReport) -> dict[str, dict]:
    """Rows of INFO.csv by image name, with lenient reading of the known real-world defects.

    An optional ``PixelSpacing`` column (mm per pixel; not in the BUS-UCLM release) is stored as
    the image's pixel spacing; the export's INFO.csv keeps the release's six columns.
    """
    text = data.decode("utf-8-sig", errors="replace")
    sample = text[:2048]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    if delimiter != ";":
        report.defect(where, "separator is ',' not ';'", "read with ','")
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    needed = {"Image", "Label", "Doppler", "Marks", "Combined"}
    header = {h.strip() for h in (reader.fieldnames or [])}
    if not needed <= header:
        report.defect(where, f"header lacks {', '.join(sorted(needed - header))}", "INFO.csv ignored")
        return {}
    rows: dict[str, dict] = {}
    for lineno, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        name = row.get("Image", "")
        here = f"{where} line {lineno} ({name})"
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
    return rows


def importer_user():
    """The service account that authors imported layers that no person drew in BUS Review."""
    user, created = get_user_model().objects.get_or_create(username=IMPORTER_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save()
    return user


# --- the import itself ------------------------------------------------------------------------


def import_dataset(
    source: Source,
    *,
    as_status: str = Status.APPROVED,
    actor,
    annotator=None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportReport:
    if not source.images:
        found = "; ".join(str(d) for d in source.problems[:5])
        raise ImportRefused("no PNG images found (expected images/XXXX_YYY.png)" + (f": {found}" if found else ""))
    report = ImportReport()
    report.defects.extend(source.problems)
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
    author = importer_user()
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
    return report


def _import_one(name, source: Source, row, as_status, author, annotator, actor, report: ImportReport) -> str:
    match = NAME_RE.match(name)
    if not match:
        report.defect(name, "name does not follow XXXX_YYY.png (4 capital letters, number)", "skipped")
        return "failed"
    try:
        data = source.images[name]()
        img = decode_png(data)
    except ValueError as e:
        report.defect(name, str(e), "skipped")
        return "failed"
    checksum = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(name=name).values_list("checksum", flat=True).first()
    if existing is not None:
        if existing == checksum:
            return "unchanged"
        report.defect(name, "an image with this name but different content is already stored", "skipped")
        return "failed"
    width, height = img.size
    if img.mode not in ("RGB", "L"):
        report.defect(name, f"image is {img.mode}, not RGB", "stored as is; masks use its size")
    if row and row["resolution"] and row["resolution"] != f"{width}x{height}":
        report.defect(
            name, f"INFO.csv Resolution {row['resolution']} but the image is {width}x{height}", "image size used"
        )

    content = _read_mask(name, source, width, height, row, report)
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
            image=image, content=content, as_status=as_status, author=author, annotator=annotator, actor=actor
        )
    return "imported"


def _read_mask(name, source: Source, width, height, row, report: ImportReport) -> workflow.LayerContent | None:
    loader = source.masks.get(name)
    if loader is None:
        if source.masks:
            report.defect(name, "no mask in masks/", "imported without a layer (status new)")
        return None
    where = f"masks/{name}"
    try:
        mask = decode_png(loader())
    except ValueError as e:
        report.defect(where, str(e), "imported without a layer (status new)")
        return None
    if mask.size != (width, height):
        report.defect(
            where,
            f"mask is {mask.size[0]}x{mask.size[1]} but the image is {width}x{height}",
            "mask resized to the image size (nearest neighbour)",
        )
        mask = mask.resize((width, height), PIL.Image.Resampling.NEAREST)
    rgb = np.asarray(mask.convert("RGB"))
    reading = geometry.extract_lesions(rgb)
    if reading.other_pixels:
        report.defect(where, f"{reading.other_pixels} pixels are neither black, red nor green", "treated as background")
    for label, x, y, area in reading.dropped_specks:
        report.defect(where, f"{label} speck of {area} px at ({x}, {y}) is too thin to outline", "dropped")
    found = geometry.label_of(reading.lesions).lower()
    if row and row["label"] and row["label"] != found:
        report.defect(
            where, f"INFO.csv says {row['label'].capitalize()} but the mask shows {found.capitalize()}", "mask used"
        )
    return workflow.LayerContent(lesions=reading.lesions, is_normal=not reading.lesions)


def check_upload_size(content_length: int) -> None:
    if content_length > settings.MAX_UPLOAD_BYTES:
        raise ImportRefused(
            f"upload of {content_length} bytes exceeds the limit of {settings.MAX_UPLOAD_BYTES}", http_status=413
        )


def import_uploads(*, data, files, content_length: int, actor) -> ImportReport:
    """Import what a curator uploaded: a ZIP as ``archive``, or ``images`` + ``masks`` + ``info_csv``.

    Raises ImportRefused (nothing imported) for a request that cannot be acted on.
    """
    check_upload_size(content_length)
    as_status = data.get("as_status") or Status.APPROVED
    if as_status not in (Status.DRAFT, Status.SUBMITTED, Status.APPROVED):
        raise ImportRefused("as_status must be draft, submitted or approved")
    annotator = None
    if data.get("annotator"):
        annotator = get_user_model().objects.filter(username=data["annotator"]).first()
        if annotator is None or permissions.ANNOTATOR not in permissions.roles_of(annotator):
            raise ImportRefused(f"{data['annotator']} is not an annotator")
    if as_status == Status.DRAFT and annotator is None:
        raise ImportRefused("importing as draft needs the annotator who will own the drafts")
    archive = files.get("archive")
    if archive is not None:
        source = zip_source(archive)
    else:
        images = files.getlist("images")
        if not images:
            raise ImportRefused("send a ZIP as 'archive' or PNG files as 'images'")
        source = uploads_source(images, files.getlist("masks"), files.get("info_csv"))
    return import_dataset(source, as_status=as_status, actor=actor, annotator=annotator)
