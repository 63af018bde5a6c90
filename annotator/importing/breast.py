"""BrEaST-Lesions_USG (Pawłowska et al. 2024, CC BY 4.0): ``caseNNN.png``, the tumour mask
``caseNNN_tumor.png``, masks of other findings ``caseNNN_other1.png``..., and the clinical
spreadsheet (``.xlsx``, one row per image; CaseID, Image_filename, Mask_tumor_filename,
Mask_other_filename, Pixel_size, Shape, Margin, Echogenicity, Posterior_features, Calcifications,
BIRADS, Classification, ...; several values in one cell are separated by ``&``).

Only the tumour mask is a lesion: the "other" masks outline other findings (cysts, lymph nodes,
artefacts the authors marked) that are not the case's classified lesion, so they would carry a
label they were not given; their file names are kept in the image's metadata. The class
(benign/malignant/normal) is the Classification column; Pixel_size (mm per pixel) is the image's
spacing; each CaseID is a patient.

The BI-RADS columns map onto the app's lexicon (``annotator.birads``): Shape, Margin (several
values, ``&``), Echogenicity (-> echo pattern), Posterior_features and Calcifications become the
tumour lesion's descriptors, BIRADS the image's assessment category. "not applicable" (and
"no" calcifications, which the lexicon expresses by listing none) set nothing. A value with no
lexicon counterpart (e.g. a BIRADS of plain "4", a margin of "not circumscribed" without its
kind) is reported and not set; every column is also kept as published in the image's metadata
(``birads_columns``), so nothing is dropped.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePosixPath

from annotator import birads

from .base import ImportReport, Source
from .public import Dataset, MaskFile, PublicImage, as_spacing, by_name, register, split_values

IMAGE_RE = re.compile(r"^case[0-9]+\.png\Z", re.I)
REQUIRED = ("CaseID", "Image_filename", "Mask_tumor_filename", "Classification")
BIRADS_COLUMNS = ("Shape", "Margin", "Echogenicity", "Posterior_features", "Calcifications", "BIRADS")
CLASSES = {"benign": "benign", "malignant": "malignant", "normal": "normal"}
NOT_APPLICABLE = {"not applicable", "n/a", "na", "-", ""}


# Spreadsheet column -> (lexicon key, {normalised sheet value -> lexicon value}); None: sets nothing.
DESCRIPTOR_COLUMNS: dict[str, tuple[str, dict[str, str | None]]] = {
    "Shape": ("shape", {"oval": "oval", "round": "round", "irregular": "irregular"}),
    "Margin": (
        "margin",
        {
            "circumscribed": "circumscribed",
            "indistinct": "indistinct",
            "angular": "angular",
            "microlobulated": "microlobulated",
            "spiculated": "spiculated",
        },
    ),
    "Echogenicity": (
        "echo_pattern",
        {
            "anechoic": "anechoic",
            "hyperechoic": "hyperechoic",
            "hypoechoic": "hypoechoic",
            "isoechoic": "isoechoic",
            "heterogeneous": "heterogeneous",
            "complex cystic/solid": "complex_cystic_solid",
            "complex cystic and solid": "complex_cystic_solid",
            "complex": "complex_cystic_solid",
        },
    ),
    "Posterior_features": (
        "posterior_features",
        {
            "no": "none",
            "none": "none",
            "no posterior features": "none",
            "enhancement": "enhancement",
            "shadowing": "shadowing",
            "combined": "combined",
            "combined pattern": "combined",
        },
    ),
    "Calcifications": (
        "calcifications",
        {
            "no": None,
            "none": None,
            "in a mass": "in_mass",
            "in mass": "in_mass",
            "outside of a mass": "outside_mass",
            "outside a mass": "outside_mass",
            "intraductal": "intraductal",
        },
    ),
}
NOT_CIRCUMSCRIBED = re.compile(r"^not circumscribed\s*[-:,]\s*")


def _normal_form(value: str) -> str:
    return NOT_CIRCUMSCRIBED.sub("", " ".join(value.lower().split()))


def map_descriptors(row: dict, where: str, report: ImportReport) -> tuple[dict, str]:
    """The row's BI-RADS columns as lexicon descriptors and an assessment; unmapped values reported."""
    kept = "kept in the image's metadata (birads_columns), not set"
    descriptors: dict[str, list[str]] = {}
    for column, (key, table) in DESCRIPTOR_COLUMNS.items():
        for value in split_values(row.get(column)):
            normal = _normal_form(value)
            if normal in NOT_APPLICABLE:
                continue
            if normal not in table:
                report.defect(where, f"{column} {value!r} has no BI-RADS lexicon value", kept)
                continue
            if table[normal] is not None:
                descriptors.setdefault(key, []).append(table[normal])
    flat: dict = {k: (v if birads.LEXICON[k].multi else v[0]) for k, v in descriptors.items()}
    for key, values in descriptors.items():
        if not birads.LEXICON[key].multi and len(set(values)) > 1:
            report.defect(where, f"{birads.LEXICON[key].label} has several values {values}", kept)
            flat.pop(key)
    try:
        canonical = birads.validate_descriptors(flat)
    except birads.DescriptorError as e:
        report.defect(where, e.message, kept)
        flat.pop(e.key, None)
        canonical = birads.validate_descriptors(flat)
    assessment = ""
    raw = _cell(row, "BIRADS")
    if raw and raw.lower() not in NOT_APPLICABLE:
        try:
            assessment = birads.validate_assessment(raw)
        except birads.DescriptorError:
            report.defect(
                where, f"BIRADS {raw!r} is not an assessment category ({', '.join(birads.ASSESSMENT_CATEGORIES)})", kept
            )
    return canonical, assessment


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
        descriptors, assessment = map_descriptors(row, where, report)
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
                descriptors=descriptors if label in ("benign", "malignant") else {},
                assessment=assessment,
            )
        )
    for path in sorted(set(source.files) - used):
        report.defect(path, "not named in the spreadsheet", "skipped")
    return records


DATASET = register(
    Dataset(key="breast", title="BrEaST-Lesions_USG", licence="CC-BY-4.0", read=read, recognise=recognise)
)
