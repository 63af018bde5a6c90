"""What every source format shares: the report, the options, the files of a source and how they are read.

A source is a folder, a ZIP, or uploaded files. Each file is classified once, by name for the
BUS-UCLM layout (``images/*.png``, ``masks/*.png``, ``INFO.csv``) and by content for DICOM (the
``DICM`` marker or a bare dataset's first tag; a ``.dcm`` name only makes a file a candidate, so a
non-DICOM file named ``.dcm`` gets its own error). Loaders read a file only when it is imported.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model

from annotator.models import Status

IMPORTER_USERNAME = "importer"

Loader = Callable[[], bytes]
# Enough bytes to tell DICOM by content: the 128-byte preamble and "DICM", or a bare dataset's first tag.
PEEK_BYTES = 132
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
FRAMES_KEY = "key"
FRAMES_ALL = "all"
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
    # One row per DICOM file (importing.dicom.FileRow): image(s), frames, spacing, crop, boxes or error.
    files: list = field(default_factory=list)

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
            "files": [f.as_dict() for f in self.files],
        }


@dataclass
class Source:
    images: dict[str, Loader] = field(default_factory=dict)
    masks: dict[str, Loader] = field(default_factory=dict)
    info_csv: Loader | None = None
    info_name: str = "INFO.csv"
    problems: list[Defect] = field(default_factory=list)
    # DICOM files by their name in the source (the name is shown in the report, never stored)
    dicoms: dict[str, Loader] = field(default_factory=dict)
    # Every file by its path in the source (folder or ZIP), for the public datasets' own layouts
    # (annotator.importing.public), which the BUS-UCLM classification above does not fit.
    files: dict[str, Loader] = field(default_factory=dict)


# The dataset layouts a curator can choose; "auto" tells them apart by the source's files.
AUTO = "auto"
BUS_UCLM = "bus-uclm"


@dataclass
class ImportOptions:
    """How uploaded files enter the workflow (validated by ``serializers.ImportInput``)."""

    as_status: str = Status.APPROVED
    annotator: object | None = None  # the user who owns drafts (needed for as_status=draft)
    # DICOM only: "key" (one key frame per file), "all", or a list of 1-based frame numbers.
    frames: str | list[int] = FRAMES_KEY
    # DICOM only: modalities accepted besides US (refused unless the curator allows them).
    allow_modalities: tuple[str, ...] = ()
    # Which layout the source is in: "auto" (recognised by its files), "bus-uclm" (and DICOM), or a
    # public dataset's key (importing.public.DATASETS: busi, breast, bus-bra).
    dataset: str = AUTO


# --- reading sources --------------------------------------------------------------------------


def looks_like_dicom(name: str, head: bytes) -> bool:
    """A DICOM candidate: the Part 10 marker, a bare dataset's first group (0002 or 0008, either
    byte order), or a DICOM file name. ``read_dicom`` decides for certain when it is imported."""
    if len(head) >= PEEK_BYTES and head[128:132] == b"DICM":
        return True
    if len(head) >= 4 and head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
        return True
    return name.lower().endswith(DICOM_SUFFIXES) or name.upper() == "DICOMDIR"


def _classify(
    path: PurePosixPath, loader: Loader, source: Source, where: str, peek: Callable[[], bytes] | None = None
) -> None:
    parts = path.parts
    if path.is_absolute() or ".." in parts:
        source.problems.append(Defect(where, "unsafe path in archive", "skipped"))
        return
    name = path.name
    if name.startswith(".") or "__MACOSX" in parts:
        return
    source.files[str(path)] = loader
    if name.lower() == "info.csv":
        source.info_csv = loader
        source.info_name = where
    elif name.lower().endswith(".png"):
        target = source.masks if len(parts) > 1 and parts[-2].lower() == "masks" else source.images
        if name in target:
            source.problems.append(Defect(where, f"a second file named {name}", "skipped; the first one is used"))
        else:
            target[name] = loader
    elif peek is not None and looks_like_dicom(name, _safe_peek(peek)):
        source.dicoms[where] = loader
    else:
        source.problems.append(Defect(where, "not a PNG image or INFO.csv, nor a DICOM file", "skipped"))


def _safe_peek(peek: Callable[[], bytes]) -> bytes:
    try:
        return peek()
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
        return b""  # an unreadable member: classified by name, and its loader reports the error


def _capped(read: Callable[[], bytes], declared: int, where: str, limit: int | None = None) -> Loader:
    def load() -> bytes:
        cap = limit if limit is not None else settings.MAX_IMAGE_BYTES
        if declared > cap:
            raise ValueError(f"file is {declared} bytes; the limit is {cap}")
        data = read()
        if len(data) > cap:
            raise ValueError(f"file is larger than the limit of {cap} bytes")
        return data

    return load


def _file_limit() -> int:
    """One read cap for every file; DICOM cine loops are larger than PNGs, so theirs may be raised."""
    return max(settings.MAX_IMAGE_BYTES, settings.DICOM_MAX_BYTES)


def folder_source(root: Path) -> Source:
    if not root.exists():
        raise ImportRefused(f"{root} does not exist")
    if root.is_file():
        with root.open("rb") as fh:
            head = fh.read(PEEK_BYTES)
        if head.startswith(b"PK") or not looks_like_dicom(root.name, head):
            return zip_source(root)
        # One DICOM file given on its own (a .dcm from a PACS export).
        size = root.stat().st_size
        return Source(dicoms={root.name: _capped(root.read_bytes, size, root.name, _file_limit())})
    source = Source()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = PurePosixPath(path.relative_to(root).as_posix())

        def peek(path=path) -> bytes:
            with path.open("rb") as fh:
                return fh.read(PEEK_BYTES)

        limit = None if path.name.lower().endswith(".png") else _file_limit()
        _classify(rel, _capped(path.read_bytes, path.stat().st_size, str(rel), limit), source, str(rel), peek)
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
            if info.flag_bits & 0x1:
                raise ValueError("encrypted ZIP member (BUS Review reads no passwords)")
            try:
                with archive.open(info) as fh:
                    return fh.read(settings.MAX_IMAGE_BYTES + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as e:
                # Bad CRC, damaged deflate stream, unsupported compression or (strong) encryption.
                raise ValueError(f"damaged or unreadable ZIP member ({e})") from None

        def peek(info=info) -> bytes:
            if info.flag_bits & 0x1:
                return b""
            with archive.open(info) as fh:
                return fh.read(PEEK_BYTES)

        limit = None if path.name.lower().endswith(".png") else _file_limit()
        _classify(path, _capped(read, info.file_size, info.filename, limit), source, info.filename, peek)
    return source


def uploads_source(images: Iterable, masks: Iterable = (), info_csv=None) -> Source:
    """Files uploaded from the browser (Django UploadedFile objects): PNGs, or DICOM files by content."""
    source = Source()
    for files, target in ((images, source.images), (masks, source.masks)):
        for f in files:
            name = PurePosixPath(f.name).name
            if name.lower().endswith(".png"):
                target[name] = _capped(f.read, f.size, name)
                continue
            if target is source.images:
                head = f.read(PEEK_BYTES)
                f.seek(0)
                if looks_like_dicom(name, head):
                    source.dicoms[name] = _capped(_rewound(f), f.size, name, _file_limit())
                    continue
            source.problems.append(Defect(name, "not a PNG image (nor a DICOM file)", "skipped"))
    if info_csv is not None:
        source.info_csv = _capped(info_csv.read, info_csv.size, info_csv.name)
        source.info_name = info_csv.name
    return source


def _rewound(upload) -> Loader:
    """Read an upload from its start each time (a DICOM file is read twice: header pass, then import)."""

    def read() -> bytes:
        upload.seek(0)
        return upload.read()

    return read


def importer_user():
    """The service account that authors imported layers that no person drew in BUS Review."""
    user, created = get_user_model().objects.get_or_create(username=IMPORTER_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save()
    return user


def check_upload_size(content_length: int) -> None:
    if content_length > settings.MAX_UPLOAD_BYTES:
        raise ImportRefused(
            f"upload of {content_length} bytes exceeds the limit of {settings.MAX_UPLOAD_BYTES}", http_status=413
        )
