"""Smart contour: a proposed lesion outline from a box (or a click) on a grayscale ultrasound image.

Pure numpy/OpenCV; no Django. The reader always edits the proposal before it counts.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MIN_BOX = 6  # pixels; a smaller box is a slip of the mouse, not a lesion


class ProposalError(ValueError):
    pass


def decode_gray(png: bytes) -> np.ndarray:
    gray = cv2.imdecode(np.frombuffer(bytes(png), np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ProposalError("the stored image could not be decoded")
    return gray


def check_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    if box is None or len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise ProposalError("box must be [x0, y0, x1, y1] in image pixels")
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0 = max(0, round(x0)), max(0, round(y0))
    x1, y1 = min(width - 1, round(x1)), min(height - 1, round(y1))
    if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise ProposalError(f"the box must be at least {MIN_BOX} pixels wide and high inside the image")
    return x0, y0, x1, y1


def ellipse_in_box(box: tuple[int, int, int, int], n: int = 48) -> list[list[float]]:
    """The ellipse inscribed in the box: the baseline every smarter method must beat."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [
        [round(cx + rx * math.cos(2 * math.pi * k / n), 1), round(cy + ry * math.sin(2 * math.pi * k / n), 1)]
        for k in range(n)
    ]


def propose(gray: np.ndarray, *, box=None, point=None) -> list[list[float]]:
    """A contour (list of [x, y]) for the lesion in ``box``."""
    height, width = gray.shape[:2]
    if box is None:
        raise ProposalError("draw a box around the lesion")
    return ellipse_in_box(check_box(box, width, height))
