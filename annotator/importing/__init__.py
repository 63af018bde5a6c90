"""Import images into the dataset from a folder, a ZIP or uploaded files, one module per source format.

- ``base``: the report, the options, the source (its files classified) and how sources are read;
- ``bus_uclm``: the BUS-UCLM layout (anonymised PNGs, masks, INFO.csv);
- ``dicom``: DICOM ultrasound files, recognised by content, de-identified, calibrated and held in
  the ``redaction`` status until a curator has checked them for burned-in text;
- ``public`` and one module per public dataset (``busi``, ``breast``, ``busbra``): each read in its
  own published layout, stored under BUS-UCLM-style names with the source kept as metadata.

A format module offers ``import_<kind>(source, report, ...)`` over its part of the source; adding a
format (a public dataset's layout) is adding a file and one line in ``import_dataset``. This package
re-exports the names callers used when it was one module.
"""

from __future__ import annotations

import hashlib  # noqa: F401 - re-exported: callers check stored checksums with importing.hashlib
from collections.abc import Callable

from annotator.bulk import no_query_log
from annotator.models import Status

from . import breast, busbra, busi, dicom, public  # noqa: F401 - the public datasets register themselves
from .base import (
    AUTO,
    BUS_UCLM,
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
    "AUTO",
    "BUS_UCLM",
    "DATASET_CHOICES",
    "NOTHING_FOUND",
    "dicom",
    "public",
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
    "chosen_dataset",
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


# The import option's values: auto, bus-uclm (with DICOM), and each public dataset's key.
DATASET_CHOICES = [AUTO, BUS_UCLM, *public.DATASETS]


def chosen_dataset(source: Source, choice: str) -> public.Dataset | None:
    """The public dataset to read ``source`` as (None: the BUS-UCLM layout and DICOM).

    ``auto`` recognises a public dataset by its files (BUSI: class folders with ``_mask`` files;
    BrEaST: a ``.xlsx`` beside ``caseNNN.png``; BUS-BRA: ``bus_data.csv``); a layout chosen
    by the curator is read as that layout even if its marks are missing.
    """
    if choice == BUS_UCLM:
        return None
    if choice == AUTO:
        return public.detect(source)
    if choice not in public.DATASETS:
        raise ImportRefused(f"unknown dataset layout {choice!r}; known: {', '.join(DATASET_CHOICES)}")
    return public.DATASETS[choice]


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
    options = options or ImportOptions(as_status=as_status, annotator=annotator)
    dataset = chosen_dataset(source, options.dataset)
    if dataset is not None:
        return _import_public(dataset, source, options, actor, progress)
    if not source.images and not source.dicoms:
        found = "; ".join(str(d) for d in source.problems[:5])
        raise ImportRefused(NOTHING_FOUND + (f": {found}" if found else ""))
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


def _import_public(dataset: public.Dataset, source: Source, options: ImportOptions, actor, progress) -> ImportReport:
    report = ImportReport()
    # The BUS-UCLM classification's complaints (a .csv or .xlsx is "not a PNG") do not apply to
    # a public layout, whose module reports what it cannot use; unsafe paths are still reported.
    report.defects.extend(d for d in source.problems if d.problem == "unsafe path in archive")
    if not source.files:
        raise ImportRefused(f"no files found for {dataset.title}")
    with no_query_log():
        public.import_public(
            dataset, source, report, options=options, actor=actor, author=importer_user(), progress=progress
        )
    if not report.imported and not report.unchanged and not report.failed:
        found = "; ".join(str(d) for d in report.defects[:5])
        raise ImportRefused(f"nothing found in the {dataset.title} layout" + (f": {found}" if found else ""))
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
