"""The export core: choose approved images, render each consensus once, feed every format."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from django.db.models import Prefetch

from annotator import geometry, measurements
from annotator.models import Image, ImageData, Lesion, Status

CHUNK = 16  # images whose PNG bytes are fetched together

# key -> format class; filled by ``@register`` as the package imports each format module.
FORMATS: dict[str, type] = {}


def register(fmt: type) -> type:
    """Class decorator: make an export format available under its ``key``."""
    if fmt.key in FORMATS:
        raise ValueError(f"two export formats use the key {fmt.key!r}")
    FORMATS[fmt.key] = fmt
    return fmt


@dataclass
class ExportOptions:
    formats: list[str] = field(default_factory=lambda: ["bus-uclm", "coco"])
    patients: list[str] = field(default_factory=list)
    exclude_doppler: bool = False
    exclude_marks: bool = False
    exclude_combined: bool = False

    def queryset(self):
        qs = Image.objects.filter(status=Status.APPROVED, consensus__isnull=False)
        if self.patients:
            qs = qs.filter(patient__code__in=self.patients)
        if self.exclude_doppler:
            qs = qs.filter(doppler=False)
        if self.exclude_marks:
            qs = qs.filter(marks=False)
        if self.exclude_combined:
            qs = qs.filter(combined=False)
        return qs.order_by("name")


@dataclass
class ExportRecord:
    name: str
    width: int
    height: int
    png: bytes
    mask: np.ndarray  # RGB, height x width x 3
    drawn: list[geometry.Lesion]  # the consensus lesions as stored
    doppler: bool
    marks: bool
    combined: bool
    # Where a public dataset's image came from (empty for images of BUS Review's own readers).
    source_dataset: str = ""
    source_file: str = ""
    source_licence: str = ""
    assessment: str = ""  # the consensus layer's BI-RADS category, "" when none
    spacing: measurements.Spacing | None = None  # mm per pixel in x and y, when calibrated

    @functools.cached_property
    def components(self) -> list[geometry.Lesion]:
        """One lesion per 8-connected component of a colour in ``mask``, extracted only when a
        format asks for them (COCO does; tracing is the costliest step of an export)."""
        return geometry.extract_lesions(self.mask).lesions if self.drawn else []

    @property
    def label(self) -> str:
        # Same as the mask's label: malignant is painted last and every lesion paints a pixel.
        return geometry.label_of(self.drawn)


def encode_png(rgb: np.ndarray, level: int = 3) -> bytes:
    """PNG bytes of an RGB array (zlib ``level``: 3 for masks; the DICOM import stores at 1)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def records(options: ExportOptions) -> Iterator[ExportRecord]:
    lesions = Prefetch("consensus__lesions", queryset=Lesion.objects.order_by("index"))
    images = options.queryset().select_related("consensus").prefetch_related(lesions)
    for image in images.iterator(chunk_size=CHUNK):
        png = ImageData.objects.filter(image=image).values_list("png", flat=True).get()
        drawn = [les.as_geometry() for les in image.consensus.lesions.all()]
        mask = geometry.rasterise(drawn, image.width, image.height)
        yield ExportRecord(
            name=image.name,
            width=image.width,
            height=image.height,
            png=bytes(png),
            mask=mask,
            drawn=drawn,
            doppler=image.doppler,
            marks=image.marks,
            combined=image.combined,
            source_dataset=image.source_dataset,
            source_file=image.source_file,
            source_licence=image.source_licence,
            assessment=image.consensus.assessment,
            spacing=measurements.spacing_of(image.pixel_spacing_x_mm, image.pixel_spacing_y_mm, image.pixel_spacing_mm),
        )


def _formats(options: ExportOptions):
    unknown = [f for f in options.formats if f not in FORMATS]
    if unknown or not options.formats:
        raise ValueError(f"unknown export format(s): {', '.join(unknown) or 'none given'}; known: {', '.join(FORMATS)}")
    return [FORMATS[key]() for key in dict.fromkeys(options.formats)]


def write_zip(fileobj, options: ExportOptions, progress: Callable[[int, int], None] | None = None) -> int:
    """Write the export ZIP to ``fileobj``; returns the number of images."""
    count = 0

    def track(done: int, total: int) -> None:
        nonlocal count
        count = done
        if progress:
            progress(done, total)

    for chunk in iter_zip(options, progress=track):
        fileobj.write(chunk)
    return count


class _Pipe:
    """A write-only, non-seekable file whose bytes are handed on as they come (for streaming)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def iter_zip(options: ExportOptions, progress: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
    """The export ZIP as a stream of byte chunks, for a StreamingHttpResponse or a job."""
    formats = _formats(options)
    total = options.queryset().count() if progress else 0
    count = 0
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for record in records(options):
            zf.writestr(f"images/{record.name}", record.png, compress_type=zipfile.ZIP_STORED)
            for fmt in formats:
                fmt.add(zf, record)
            count += 1
            if progress:
                progress(count, total)
            yield pipe.drain()
        for fmt in formats:
            fmt.finish(zf)
    yield pipe.drain()
