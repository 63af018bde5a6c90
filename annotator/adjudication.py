"""Blind double reading: the union and the intersection of two readers' layers, as lesions to edit.

Pure functions on ``geometry.Lesion`` lists; no Django. The combination is done on the masks, not on
the polygons: both layers are rasterised with the project's own rasterisation (``geometry.rasterise``,
the pixels the export writes), combined pixel by pixel, and traced back to outlines with the same
contour tracer the import uses (``geometry.extract_lesions``: OpenCV ``findContours``, holes kept).
So the result is exactly the pixels of the union or intersection, its outlines pass
``geometry.validate_lesions``, and no hand-written polygon clipping is needed.

Labels: a pixel is malignant when either reader painted it malignant (the union), or when either
did among the pixels both painted (the intersection); otherwise benign. A reader who called a
lesion malignant is not overruled silently: the adjudicator sees it and may relabel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotator import geometry
from annotator.geometry import BENIGN, COLOURS, MALIGNANT, Lesion

UNION = "union"
INTERSECTION = "intersection"
OPERATIONS = (UNION, INTERSECTION)


@dataclass
class Combination:
    lesions: list[Lesion]
    # Components too thin to outline (a one-pixel line where the two drawings just touch): left out.
    dropped_specks: int


def combine(first: Sequence[Lesion], second: Sequence[Lesion], width: int, height: int, operation: str) -> Combination:
    """The union or intersection of two layers of one image, traced to lesions (holes kept)."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation is one of {', '.join(OPERATIONS)}, not {operation!r}")
    planes_a, _ = geometry.colour_planes(geometry.rasterise(first, width, height))
    planes_b, _ = geometry.colour_planes(geometry.rasterise(second, width, height))
    any_a = planes_a[BENIGN] | planes_a[MALIGNANT]
    any_b = planes_b[BENIGN] | planes_b[MALIGNANT]
    malignant = planes_a[MALIGNANT] | planes_b[MALIGNANT]
    if operation == UNION:
        kept = any_a | any_b
    else:
        kept = any_a & any_b
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[kept & ~malignant] = COLOURS[BENIGN]
    rgb[kept & malignant] = COLOURS[MALIGNANT]
    reading = geometry.extract_lesions(rgb)
    return Combination(lesions=reading.lesions, dropped_specks=len(reading.dropped_specks))
