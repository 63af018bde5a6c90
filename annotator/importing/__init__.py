"""Import images into the dataset from a folder, a ZIP or uploaded files, one module per source format.

- ``base``: the report, the options, the source (its files classified) and how sources are read;
- ``bus_uclm``: the BUS-UCLM layout (anonymised PNGs, masks, INFO.csv);
- ``dicom``: DICOM ultrasound files, recognised by content, de-identified, calibrated and held in
  the ``redaction`` status until a curator has checked them for burned-in text.

A format module offers ``import_<kind>(source, report, ...)`` over its part of the source; adding a
format (a public dataset's layout) is adding a file and one line in ``import_dataset``. This package
re-exports the names callers used when it was one module.
"""

from __future__ import annotations

import hashlib  # noqa: F401 - re-exported: callers check stored checksums with importing.hashlib
from collections.abc import Callable

from annotator.bulk import no_query_log
from annotator.models import Status

from . import dicom
from .base import (
    DICOM_SUFFIXES,
    FRAMES_ALL,
    FRAMES_KEY,
    IMPORTER_USERNAME,
    Defect,
    ImportOptions,
    ImportRefused,
    ImportReport,
    Loader,
    Source,
    check_upload_size,
    folder_source,
    importer_user,
    looks_like_dicom,
    uploads_source,
    zip_source,
)
from .bus_uclm import (
    DELIMITERS,
    LABELS,
    LENIENT_YES,
    MAX_LESIONS,
    NAME_RE,
    NOT_READ,
    OFF_COLOUR,
    ORIENTATION_TAG,
    ORIENTATIONS,
    TRANSPOSE,
    YES,
    ImportedMask,
    decode_info_csv,
    decode_png,
    import_pngs,
    mask_rgb,
    orientation_of,
    read_info_csv,
    sniff_delimiter,
)

__all__ = [
    "NOTHING_FOUND",
    "dicom",
    "DELIMITERS",
    "DICOM_SUFFIXES",
    "FRAMES_ALL",
    "FRAMES_KEY",
    "IMPORTER_USERNAME",
    "LABELS",
    "LENIENT_YES",
    "MAX_LESIONS",
    "NAME_RE",
    "NOT_READ",
    "OFF_COLOUR",
    "ORIENTATIONS",
    "ORIENTATION_TAG",
    "TRANSPOSE",
    "YES",
    "Defect",
    "ImportOptions",
    "ImportRefused",
    "ImportReport",
    "ImportedMask",
    "Loader",
    "Source",
    "check_upload_size",
    "decode_info_csv",
    "decode_png",
    "folder_source",
    "import_dataset",
    "import_uploads",
    "importer_user",
    "looks_like_dicom",
    "mask_rgb",
    "orientation_of",
    "read_info_csv",
    "sniff_delimiter",
    "uploads_source",
    "zip_source",
]

NOTHING_FOUND = "no PNG images found (expected images/XXXX_YYY.png) and no DICOM files"


def import_dataset(
    source: Source,
    *,
    as_status: str = Status.APPROVED,
    actor,
    annotator=None,
    progress: Callable[[int, int, str], None] | None = None,
    options: ImportOptions | None = None,
) -> ImportReport:
    """Import every format found in ``source``; ImportRefused (nothing imported) when none is."""
    if not source.images and not source.dicoms:
        found = "; ".join(str(d) for d in source.problems[:5])
        raise ImportRefused(NOTHING_FOUND + (f": {found}" if found else ""))
    options = options or ImportOptions(as_status=as_status, annotator=annotator)
    if source.dicoms:
        dicom.check_ready(options)  # before anything is written: a refusal imports nothing
    report = ImportReport()
    report.defects.extend(source.problems)
    author = importer_user()
    with no_query_log():  # the INSERTs carry whole PNGs: with DEBUG on, the log would keep them all
        if source.images:
            import_pngs(
                source,
                report,
                as_status=options.as_status,
                actor=actor,
                author=author,
                annotator=options.annotator,
                progress=progress,
            )
        if source.dicoms:
            dicom.import_dicoms(source, report, options=options, actor=actor, progress=progress)
    return report


def import_uploads(*, options: ImportOptions, files, content_length: int, actor) -> ImportReport:
    """Import what a curator uploaded: a ZIP as ``archive``, or ``images`` (PNG or DICOM) + ``masks`` +
    ``info_csv``.

    Raises ImportRefused (nothing imported) for a request that cannot be acted on.
    """
    check_upload_size(content_length)
    archive = files.get("archive")
    if archive is not None:
        source = zip_source(archive)
    else:
        images = files.getlist("images")
        if not images:
            raise ImportRefused("send a ZIP as 'archive' or PNG or DICOM files as 'images'")
        source = uploads_source(images, files.getlist("masks"), files.get("info_csv"))
    return import_dataset(source, actor=actor, options=options)
