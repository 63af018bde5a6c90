"""Pixel spacing and the tissue crop from the header, and the colour (Doppler) suggestion from pixels.

Ultrasound stores its calibration per region in the Sequence of Ultrasound Regions (0018,6011):
each region is a rectangle of the frame with its own physical units (a B-mode image, a Doppler
strip, a colour bar...). The image's spacing is that of its 2D tissue region; PixelSpacing and
ImagerPixelSpacing are the fall-backs other modalities and some secondary captures use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from pydicom.dataset import Dataset

# RegionSpatialFormat 1 = 2D, RegionDataType 1 = tissue (PS3.3 C.8.5.5.1.1 / C.8.5.5.1.2).
SPATIAL_2D = 1
DATA_TISSUE = 1
# PhysicalUnitsX/YDirection codes (PS3.3 C.8.5.5.1.15) that are lengths, as millimetres per unit.
UNIT_CM = 3
_MM_PER_UNIT = {UNIT_CM: 10.0}

SOURCE_REGION = "ultrasound region"
SOURCE_PIXEL_SPACING = "PixelSpacing"
SOURCE_IMAGER_PIXEL_SPACING = "ImagerPixelSpacing"
SOURCE_NONE = "none"

# Scanners write Max X1 = Columns (one past the last pixel) often enough to allow it.
_BOUND_TOLERANCE = 1


@dataclass(frozen=True)
class Region:
    """One ultrasound region; bounds in pixels, inclusive as in DICOM."""

    spatial_format: int
    data_type: int
    min_x0: int
    min_y0: int
    max_x1: int
    max_y1: int
    units_x: int
    units_y: int
    delta_x: float
    delta_y: float

    @property
    def area(self) -> int:
        return max(self.max_x1 - self.min_x0 + 1, 0) * max(self.max_y1 - self.min_y0 + 1, 0)

    @property
    def is_2d_tissue(self) -> bool:
        return self.spatial_format == SPATIAL_2D and self.data_type == DATA_TISSUE

    def fits(self, columns: int, rows: int) -> bool:
        return (
            0 <= self.min_x0 <= self.max_x1 < columns + _BOUND_TOLERANCE
            and 0 <= self.min_y0 <= self.max_y1 < rows + _BOUND_TOLERANCE
        )

    def box(self, columns: int, rows: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) with right and bottom exclusive (Pillow's crop box), in the image."""
        return (self.min_x0, self.min_y0, min(self.max_x1 + 1, columns), min(self.max_y1 + 1, rows))

    def as_dict(self) -> dict[str, int | float]:
        return {
            "spatial_format": self.spatial_format,
            "data_type": self.data_type,
            "min_x0": self.min_x0,
            "min_y0": self.min_y0,
            "max_x1": self.max_x1,
            "max_y1": self.max_y1,
            "units_x": self.units_x,
            "units_y": self.units_y,
            "delta_x": self.delta_x,
            "delta_y": self.delta_y,
        }


@dataclass(frozen=True)
class Calibration:
    """Spacing in mm per pixel along X (columns) and Y (rows), where it came from, and the crop."""

    spacing_x_mm: float | None
    spacing_y_mm: float | None
    source: str
    crop: tuple[int, int, int, int] | None  # the 2D tissue region, (left, top, right, bottom) exclusive
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "spacing_x_mm": self.spacing_x_mm,
            "spacing_y_mm": self.spacing_y_mm,
            "spacing_source": self.source,
            "crop": list(self.crop) if self.crop else None,
            "calibration_note": self.note,
        }


def _number(item: Dataset, keyword: str, cast: type) -> int | float | None:
    value = item.get(keyword)
    if value is None or value == "":
        return None
    try:
        number = cast(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def regions(ds: Dataset) -> list[Region]:
    """The ultrasound regions with complete bounds, in file order; malformed items are skipped."""
    found = []
    for item in ds.get("SequenceOfUltrasoundRegions") or []:
        bounds = [_number(item, k, int) for k in ("RegionLocationMinX0", "RegionLocationMinY0")]
        bounds += [_number(item, k, int) for k in ("RegionLocationMaxX1", "RegionLocationMaxY1")]
        if any(b is None for b in bounds):
            continue
        found.append(
            Region(
                spatial_format=_number(item, "RegionSpatialFormat", int) or 0,
                data_type=_number(item, "RegionDataType", int) or 0,
                min_x0=bounds[0],
                min_y0=bounds[1],
                max_x1=bounds[2],
                max_y1=bounds[3],
                units_x=_number(item, "PhysicalUnitsXDirection", int) or 0,
                units_y=_number(item, "PhysicalUnitsYDirection", int) or 0,
                delta_x=_number(item, "PhysicalDeltaX", float) or 0.0,
                delta_y=_number(item, "PhysicalDeltaY", float) or 0.0,
            )
        )
    return found


def tissue_region(ds: Dataset) -> Region | None:
    """The 2D tissue region; of several (a dual view), the largest, the first on a tie."""
    candidates = [r for r in regions(ds) if r.is_2d_tissue]
    return max(candidates, key=lambda r: r.area) if candidates else None


def _pair_spacing(ds: Dataset, keyword: str) -> tuple[float, float] | None:
    """(x, y) in mm from a PixelSpacing-style pair, which DICOM orders row spacing (Y) first."""
    value = ds.get(keyword)
    try:
        row_mm, column_mm = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        return None
    if not (math.isfinite(row_mm) and math.isfinite(column_mm)) or row_mm <= 0 or column_mm <= 0:
        return None
    return column_mm, row_mm


def calibration(ds: Dataset) -> Calibration:
    """The spacing and crop: the 2D tissue region's, else PixelSpacing, else ImagerPixelSpacing, else none.

    A region whose bounds lie outside the image describes different pixels (the image was resized
    or cropped after acquisition), so neither its spacing nor its crop is used. A region in units
    other than centimetres gives the crop but no spacing.
    """
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    region = tissue_region(ds)
    crop = None
    note = ""
    if region is not None and not region.fits(columns, rows):
        note = "the ultrasound region lies outside the image, so it was ignored"
        region = None
    if region is not None:
        crop = region.box(columns, rows)
        mm_x, mm_y = _MM_PER_UNIT.get(region.units_x), _MM_PER_UNIT.get(region.units_y)
        if mm_x and mm_y and region.delta_x > 0 and region.delta_y > 0:
            return Calibration(region.delta_x * mm_x, region.delta_y * mm_y, SOURCE_REGION, crop)
        note = "the ultrasound region's units are not centimetres, so it gives no spacing"
    for keyword, source in (
        ("PixelSpacing", SOURCE_PIXEL_SPACING),
        ("ImagerPixelSpacing", SOURCE_IMAGER_PIXEL_SPACING),
    ):
        pair = _pair_spacing(ds, keyword)
        if pair:
            return Calibration(pair[0], pair[1], source, crop, note)
    return Calibration(None, None, SOURCE_NONE, crop, note)


# --- colour (Doppler) ---------------------------------------------------------------------------

# A pixel is "colour" when its channels differ by at least this much (a JPEG-compressed grey
# B-mode stays within a few levels); a region is colour when at least this share of it is.
COLOUR_SPREAD = 64
COLOUR_MIN_SHARE = 0.01
COLOUR_MIN_PIXELS = 200


def colour_share(rgb: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """Share of the pixels in `box` (the whole image if None) whose channels spread ≥ COLOUR_SPREAD."""
    area = rgb if box is None else rgb[box[1] : box[3], box[0] : box[2]]
    if area.size == 0:
        return 0.0
    # OpenCV's per-channel max/min is ~10x faster than numpy's reduction over a 3-wide axis.
    red, green, blue = cv2.split(np.ascontiguousarray(area))
    spread = cv2.subtract(cv2.max(cv2.max(red, green), blue), cv2.min(cv2.min(red, green), blue))
    return float(np.count_nonzero(spread >= COLOUR_SPREAD)) / (area.shape[0] * area.shape[1])


def has_colour(rgb: np.ndarray, region: tuple[int, int, int, int] | None = None) -> bool:
    """Suggest the Doppler flag: the tissue region (or the whole image) holds a colour flow map.

    A grey B-mode has no saturated pixels; annotation marks, cursors and scale
    markers stay well under 1 % of the region (0.4 % on the ALOKA dual view); a colour Doppler box
    is several per cent (5 % on US1). The annotator can still change the flag.
    """
    area = rgb if region is None else rgb[region[1] : region[3], region[0] : region[2]]
    if area.size == 0:
        return False
    share = colour_share(area)
    return share >= COLOUR_MIN_SHARE and share * area.shape[0] * area.shape[1] >= COLOUR_MIN_PIXELS
