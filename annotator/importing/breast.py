"""BrEaST-Lesions_USG (Pawłowska et al. 2024, CC BY 4.0): ``caseNNN.png``, the tumour mask
``caseNNN_tumor.png``, masks of other findings ``caseNNN_other1.png``..., and the clinical
spreadsheet (``.xlsx``, one row per image; CaseID, Image_filename, Mask_tumor_filename,
Mask_other_filename, Pixel_size, Shape, Margin, Echogenicity, Posterior_features, Calcifications,
BIRADS, Classification, ...; several values in one cell are separated by ``&``).

Only the tumour mask is a lesion: the "other" masks outline other findings (cysts, lymph nodes,
artefacts the authors marked) that are not the case's classified lesion, so they would carry a
label they were not given; their file names are kept in the image's metadata. The class
(benign/malignant/normal) is the Classification column; Pixel_size (mm per pixel) is the image's
spacing; each CaseID is a patient. The BI-RADS columns are kept, as published, in the image's
metadata (``birads_columns``); values that are not one the sheet is known to use are reported.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePosixPath

from .base import ImportReport, Source
from .public import Dataset, MaskFile, PublicImage, as_spacing, by_name, register, split_values

IMAGE_RE = re.compile(r"^case[0-9]+\.png\Z", re.I)
REQUIRED = ("CaseID", "Image_filename", "Mask_tumor_filename", "Classification")
BIRADS_COLUMNS = ("Shape", "Margin", "Echogenicity", "Posterior_features", "Calcifications", "BIRADS")
CLASSES = {"benign": "benign", "malignant": "malignant", "normal": "normal"}
NOT_APPLICABLE = {"not applicable", "n/a", "na", "-", ""}


def recognise(source: Source) -> bool:
    names = [PurePosixPath(p).name for p in source.files]
    return any(n.lower().endswith(".xlsx") for n in names) and any(IMAGE_RE.match(n) for n in names)


def read_sheet(data: bytes, where: str) -> list[dict]:
    """The spreadsheet's rows as dicts by header (the first row naming CaseID); ValueError if unreadable."""
    import openpyxl  # only this importer needs it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - openpyxl raises many types for a damaged file
        raise ValueError(f"not a readable .xlsx workbook ({type(e).__name__})") from None
    try:
        for sheet in book.worksheets:
            rows = sheet.iter_rows(values_only=True)
            for row in rows:
                header = [str(c).strip() if c is not None else "" for c in row]
                if "CaseID" in header:
                    missing = [c for c in REQUIRED if c not in header]
                    if missing:
                        raise ValueError(f"the sheet has no column {', '.join(missing)}")
                    return [
                        {h: v for h, v in zip(header, values, strict=False) if h}
                        for values in rows
                        if any(v is not None and str(v).strip() for v in values)
                    ]
        raise ValueError("no sheet has a header row naming CaseID")
    finally:
        book.close()


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def read(source: Source, report: ImportReport) -> list[PublicImage]:
    sheets = sorted(p for p in source.files if p.lower().endswith(".xlsx"))
    if not sheets:
        report.defect("clinical spreadsheet", "no .xlsx in the upload", "nothing imported from this dataset")
        return []
    if len(sheets) > 1:
        report.defect(", ".join(sheets[1:]), f"more than one spreadsheet; {sheets[0]} is read", "ignored")
    sheet = sheets[0]
    try:
        rows = read_sheet(source.files[sheet](), sheet)
    except ValueError as e:
        report.defect(sheet, str(e), "nothing imported from this dataset")
        return []
    names = by_name(source)
    used: set[str] = {sheet}
    records: list[PublicImage] = []
    for number, row in enumerate(rows, start=2):
        image_name = _cell(row, "Image_filename")
        where = f"{sheet} row {number} ({image_name or 'no image'})"
        paths = names.get(image_name.casefold(), [])
        if not image_name or not paths:
            report.defect(where, "its image file is not in the upload", "row skipped")
            continue
        path = paths[0]
        used.add(path)
        label = CLASSES.get(_cell(row, "Classification").lower(), "")
        if not label:
            report.defect(where, f"Classification is {_cell(row, 'Classification')!r}", "imported without a layer")
        masks = []
        for column in ("Mask_tumor_filename",):
            for mask_name in split_values(row.get(column)):
                if mask_name.lower() in NOT_APPLICABLE:
                    continue
                found = names.get(mask_name.casefold(), [])
                if not found:
                    report.defect(where, f"{column} {mask_name} is not in the upload", "that mask not read")
                    continue
                used.add(found[0])
                masks.append(MaskFile(found[0], source.files[found[0]]))
        others = [v for v in split_values(row.get("Mask_other_filename")) if v.lower() not in NOT_APPLICABLE]
        for other in others:
            if other.casefold() in names:
                used.update(names[other.casefold()])
            else:
                report.defect(where, f"Mask_other_filename {other} is not in the upload", "noted")
        columns = {c: _cell(row, c) for c in BIRADS_COLUMNS if c in row}
        records.append(
            PublicImage(
                path=path,
                source_file=PurePosixPath(path).name,
                loader=source.files[path],
                patient=_cell(row, "CaseID") or image_name,
                label=label,
                masks=masks,
                spacing_mm=as_spacing(row.get("Pixel_size"), where, "Pixel_size", report),
                metadata={
                    "case": _cell(row, "CaseID"),
                    "classification": _cell(row, "Classification"),
                    "other_findings": others,  # masks of findings that are not the lesion (not imported)
                    "birads_columns": columns,
                },
            )
        )
    for path in sorted(set(source.files) - used):
        report.defect(path, "not named in the spreadsheet", "skipped")
    return records


DATASET = register(
    Dataset(key="breast", title="BrEaST-Lesions_USG", licence="CC-BY-4.0", read=read, recognise=recognise)
)
