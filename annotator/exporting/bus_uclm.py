"""BUS-UCLM layout: ``masks/XXXX_YYY.png`` (RGB) and ``INFO.csv`` byte for byte as the release.

When any exported image came from a public dataset, ``sources.csv`` says where each image came
from (``Image;Dataset;SourceFile;Licence``, INFO.csv's conventions: ``;``, UTF-8 with BOM, LF,
sorted by image), so users can honour each source's licence; images drawn in BUS Review have
empty source fields. INFO.csv itself is unchanged.
"""

from __future__ import annotations

import zipfile

from annotator.exporting.base import ExportRecord, encode_png, register

HEADER = "Image;Resolution;Label;Doppler;Marks;Combined"
SOURCES_HEADER = "Image;Dataset;SourceFile;Licence"


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
        self.sources: list[str] = []
        self.public = False

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        zf.writestr(f"masks/{record.name}", encode_png(record.mask), compress_type=zipfile.ZIP_STORED)
        self.rows.append(info_row(record))
        self.public |= bool(record.source_dataset)
        self.sources.append(
            ";".join(
                [record.name, *(_field(v) for v in (record.source_dataset, record.source_file, record.source_licence))]
            )
        )

    def finish(self, zf: zipfile.ZipFile) -> None:
        # UTF-8 with BOM, LF line ends, rows sorted by image name (records arrive sorted already).
        text = "\n".join([HEADER, *sorted(self.rows)]) + "\n"
        zf.writestr("INFO.csv", "\ufeff".encode() + text.encode("utf-8"))
        if self.public:
            sources = "\n".join([SOURCES_HEADER, *sorted(self.sources)]) + "\n"
            zf.writestr("sources.csv", "\ufeff".encode() + sources.encode("utf-8"))


def _field(value: str) -> str:
    """A sources.csv value: BUSI's file names have spaces and parentheses but never ';' or quotes;
    should one ever have them, it is quoted as CSV readers expect."""
    if any(c in value for c in ';"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
