"""BUS-UCLM layout: ``masks/XXXX_YYY.png`` (RGB) and ``INFO.csv`` byte for byte as the release."""

from __future__ import annotations

import zipfile

from annotator.exporting.base import ExportRecord, encode_png, register

HEADER = "Image;Resolution;Label;Doppler;Marks;Combined"


def yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def info_row(record: ExportRecord) -> str:
    return ";".join(
        [
            record.name,
            f"{record.width}x{record.height}",
            record.label,
            yes_no(record.doppler),
            yes_no(record.marks),
            yes_no(record.combined),
        ]
    )


@register
class BusUclmFormat:
    key = "bus-uclm"

    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        zf.writestr(f"masks/{record.name}", encode_png(record.mask), compress_type=zipfile.ZIP_STORED)
        self.rows.append(info_row(record))

    def finish(self, zf: zipfile.ZipFile) -> None:
        # UTF-8 with BOM, LF line ends, rows sorted by image name (records arrive sorted already).
        text = "\n".join([HEADER, *sorted(self.rows)]) + "\n"
        zf.writestr("INFO.csv", "\ufeff".encode() + text.encode("utf-8"))
