"""BUS-BRA (Gómez-Flores et al. 2024): ``Images/bus_0001-l.png``, ``Masks/mask_0001-l.png``,
``bus_data.csv`` (ID, Case, Histology, Pathology, BIRADS, Device, Side, ...) and the fold files
(``5-fold-cv.csv``, ``10-fold-cv.csv``...; ID and the fold).

Case is the patient (its images share a code). Pathology (benign/malignant) labels the lesion.
Histology, BIRADS, Device, Side and the published folds are kept in the image's metadata; the
folds are not used by the ``splits`` export, which deals patients of the whole (mixed) dataset
afresh, but they let a user reproduce the paper's protocol.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import PurePosixPath

from .base import Defect, ImportReport, Source
from .public import Dataset, MaskFile, PublicImage, register

IMAGE_RE = re.compile(r"^bus_(?P<id>[0-9]+-[a-z])\.png\Z", re.I)
MASK_RE = re.compile(r"^mask_(?P<id>[0-9]+-[a-z])\.png\Z", re.I)
DATA_CSV = "bus_data.csv"
REQUIRED = ("ID", "Case", "Pathology")
KEPT = ("Histology", "Pathology", "BIRADS", "Device", "Side")
PATHOLOGY = {"benign": "benign", "malignant": "malignant"}


def recognise(source: Source) -> bool:
    return any(PurePosixPath(p).name.lower() == DATA_CSV for p in source.files)


def _rows(data: bytes, where: str) -> list[dict]:
    text = data.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;\t")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def read(source: Source, report: ImportReport) -> list[PublicImage]:
    images: dict[str, str] = {}
    masks: dict[str, str] = {}
    data_path = ""
    fold_files: list[str] = []
    for path in sorted(source.files):
        name = PurePosixPath(path).name
        folder = PurePosixPath(path).parent.name.lower()
        if name.lower() == DATA_CSV:
            data_path = path
        elif name.lower().endswith(".csv"):
            fold_files.append(path)
        elif (m := IMAGE_RE.match(name)) and folder == "images":
            images[m["id"].lower()] = path
        elif (m := MASK_RE.match(name)) and folder == "masks":
            masks[m["id"].lower()] = path
        else:
            report.defect(path, "not a BUS-BRA file (Images/bus_NNNN-x.png, Masks/mask_NNNN-x.png, CSV)", "skipped")
    if not data_path:
        report.defects.insert(0, Defect(DATA_CSV, "not in the upload", "nothing imported from this dataset"))
        return []
    try:
        rows = _rows(source.files[data_path](), data_path)
        missing = [c for c in REQUIRED if rows and c not in rows[0]]
        if missing or not rows:
            raise ValueError(f"no column {', '.join(missing)}" if missing else "no rows")
    except (ValueError, UnicodeDecodeError, csv.Error) as e:
        report.defect(data_path, f"unreadable: {e}", "nothing imported from this dataset")
        return []
    folds = _folds(source, fold_files, report)
    records = []
    listed = set()
    for number, row in enumerate(rows, start=2):
        ident = row["ID"].removeprefix("bus_").lower()
        where = f"{data_path} line {number} ({row['ID']})"
        listed.add(ident)
        if ident not in images:
            report.defect(where, "its image is not in Images/", "row skipped")
            continue
        label = PATHOLOGY.get(row["Pathology"].lower(), "")
        if not label:
            report.defect(where, f"Pathology is {row['Pathology']!r}", "imported without a layer")
        mask = masks.get(ident)
        if mask is None:
            report.defect(where, "no mask in Masks/", "imported without a layer (status new)")
        metadata = {k.lower(): row[k] for k in KEPT if k in row}
        metadata["case"] = row["Case"]
        if folds.get(ident):
            metadata["folds"] = folds[ident]
        records.append(
            PublicImage(
                path=images[ident],
                source_file=PurePosixPath(images[ident]).name,
                loader=source.files[images[ident]],
                patient=row["Case"] or ident,
                label=label if mask else "",
                masks=[MaskFile(mask, source.files[mask])] if mask else [],
                metadata=metadata,
            )
        )
    for ident in sorted(set(images) - listed):
        report.defect(images[ident], f"not in {DATA_CSV}", "skipped")
    for ident in sorted(set(masks) - set(images)):
        report.defect(masks[ident], "mask without an image", "skipped")
    return records


def _folds(source: Source, paths: list[str], report: ImportReport) -> dict[str, dict]:
    """ID -> {fold file: fold} from each published fold file (ID and one more column)."""
    found: dict[str, dict] = {}
    for path in paths:
        try:
            rows = _rows(source.files[path](), path)
        except (ValueError, UnicodeDecodeError, csv.Error) as e:
            report.defect(path, f"unreadable: {e}", "ignored")
            continue
        columns = [c for c in (rows[0] if rows else {}) if c != "ID"]
        if not rows or "ID" not in rows[0] or not columns:
            report.defect(path, "not a fold file (an ID column and a fold column)", "ignored")
            continue
        stem = PurePosixPath(path).stem
        for row in rows:
            ident = row["ID"].removeprefix("bus_").lower()
            value = row[columns[0]] if len(columns) == 1 else {c: row[c] for c in columns}
            found.setdefault(ident, {})[stem] = value
    return found


DATASET = register(Dataset(key="bus-bra", title="BUS-BRA", licence="CC-BY-4.0", read=read, recognise=recognise))
