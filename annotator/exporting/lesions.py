"""``lesions.csv``: one row per drawn lesion of the consensus, with its measurements and BI-RADS
descriptors, and the image's assessment. Same conventions as INFO.csv: ``;``-separated, UTF-8 with
a BOM, LF line ends, rows in image then lesion order.

Lesions are the readers' lesions as drawn and numbered in the side panel (1, 2, ...), not the
mask's connected components (two drawn lesions that touch are one component in the mask). Areas
are each lesion's own painted pixels (``Lesion.area_px``), so overlapping lesions both count the
overlap. An image without lesions (normal) has one row with an empty lesion number and the label
``normal``, so that its assessment is exported too. Multi-valued descriptors are joined with ``|``;
an undescribed descriptor is empty; lengths and areas have two decimals (``.``), mm and mm² when the
image is calibrated (``Diameter_unit`` says which), the mm² column empty otherwise.
"""

from __future__ import annotations

import zipfile

from annotator import birads, measurements
from annotator.exporting.base import ExportRecord, register

PATH = "lesions.csv"
DESCRIPTOR_COLUMNS = {key: key.capitalize() for key in birads.LEXICON}
HEADER = ";".join(
    [
        "Image",
        "Lesion",
        "Label",
        "Area_px",
        "Area_mm2",
        "Longest_diameter",
        "Perpendicular_diameter",
        "Diameter_unit",
        *DESCRIPTOR_COLUMNS.values(),
        "Assessment",
    ]
)


def _value(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return "|".join(value) if isinstance(value, list) else value


def rows(record: ExportRecord) -> list[str]:
    if not record.drawn:
        empty = [""] * (5 + len(DESCRIPTOR_COLUMNS))  # measurements, unit, descriptors
        return [";".join([record.name, "", "normal", *empty, record.assessment])]
    out = []
    for number, lesion in enumerate(record.drawn, start=1):
        m = measurements.measure_lesion(lesion, record.width, record.height, record.spacing)
        descriptors = lesion.descriptors or {}
        out.append(
            ";".join(
                [
                    record.name,
                    str(number),
                    lesion.label,
                    str(m.area_px),
                    "" if m.area_mm2 is None else f"{m.area_mm2:.2f}",
                    f"{m.longest:.2f}",
                    f"{m.perpendicular:.2f}",
                    m.unit,
                    *(_value(descriptors.get(key)) for key in DESCRIPTOR_COLUMNS),
                    record.assessment,
                ]
            )
        )
    return out


@register
class LesionsFormat:
    key = "lesions"

    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        self.rows.extend(rows(record))

    def finish(self, zf: zipfile.ZipFile) -> None:
        # Records arrive sorted by image name, lesions in their drawn order: kept as they come.
        text = "\n".join([HEADER, *self.rows]) + "\n"
        zf.writestr(PATH, "\ufeff".encode() + text.encode("utf-8"))
