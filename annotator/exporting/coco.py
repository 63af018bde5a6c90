"""COCO instances JSON: one annotation per 8-connected component of a colour in the mask.

Hole-free lesions are polygons; a lesion with a hole is an uncompressed RLE (polygons cannot
carry holes). An annotation whose component is covered by a drawn lesion with BI-RADS descriptors
has ``attributes``: those descriptors (of the described lesion of the same label covering most of
the component) and its number, as in lesions.csv; an image with an assessment has
``birads_assessment``. Without descriptors the file is exactly as before. ``width``/``height`` are
the real width and height (the authors' script swaps them).
"""

from __future__ import annotations

import json
import zipfile

import numpy as np

from annotator import geometry
from annotator.exporting.base import ExportRecord, register

CATEGORIES = [{"id": 1, "name": "Benign"}, {"id": 2, "name": "Malignant"}]
CATEGORY_ID = {geometry.BENIGN: 1, geometry.MALIGNANT: 2}
PATH = "annotations/instances.json"


def rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major runs, starting with background)."""
    flat = mask.astype(np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _drawn_boxes(record: ExportRecord) -> list[tuple[int, str, int, int, np.ndarray]]:
    """(number, label, x0, y0, pixels) of each drawn lesion that has descriptors."""
    out = []
    for number, drawn in enumerate(record.drawn, start=1):
        if not drawn.descriptors:
            continue
        placed = geometry.lesion_box(drawn, record.width, record.height)
        if placed is not None:
            out.append((number, drawn.label, *placed))
    return out


def _overlap(ax: int, ay: int, a: np.ndarray, bx: int, by: int, b: np.ndarray) -> int:
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + a.shape[1], bx + b.shape[1]), min(ay + a.shape[0], by + b.shape[0])
    if x0 >= x1 or y0 >= y1:
        return 0
    sa = a[y0 - ay : y1 - ay, x0 - ax : x1 - ax]
    sb = b[y0 - by : y1 - by, x0 - bx : x1 - bx]
    return int(np.count_nonzero(sa & sb))


def _attributes(record: ExportRecord, label: str, x0: int, y0: int, pixels: np.ndarray, sources) -> dict:
    """The BI-RADS descriptors of the drawn lesion (same label) that covers most of this component,
    with its number as in lesions.csv; {} when no described lesion covers it (no key is written)."""
    best, best_overlap = None, 0
    for number, drawn_label, dx, dy, dpixels in sources:
        if drawn_label != label:
            continue
        overlap = _overlap(x0, y0, pixels.astype(bool), dx, dy, dpixels.astype(bool))
        if overlap > best_overlap:
            best, best_overlap = number, overlap
    if best is None:
        return {}
    return {"lesion": best, **record.drawn[best - 1].descriptors}


@register
class CocoFormat:
    key = "coco"

    def __init__(self) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        image_id = len(self.images) + 1
        entry = {"id": image_id, "file_name": record.name, "width": record.width, "height": record.height}
        if record.assessment:
            entry["birads_assessment"] = record.assessment
        self.images.append(entry)
        sources = _drawn_boxes(record)
        for lesion in record.components:
            # Measured in the lesion's box, not the frame: thousands of small components cost
            # their own pixels. Only a hole's RLE needs the frame (COCO RLE runs over the image).
            placed = geometry.lesion_box(lesion, record.width, record.height)
            if placed is None:  # components are traced from the frame: never off it
                continue
            x0, y0, pixels = placed
            if lesion.holes:
                segmentation: list | dict = rle(geometry.lesion_mask(lesion, record.width, record.height))
            else:
                segmentation = [[float(v) for point in lesion.points for v in point]]
            ys, xs = np.nonzero(pixels)
            xs, ys = xs + x0, ys + y0
            annotation = {
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": CATEGORY_ID[lesion.label],
                "segmentation": segmentation,
                "area": int(pixels.sum()),
                "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                "iscrowd": 0,
            }
            attributes = _attributes(record, lesion.label, x0, y0, pixels, sources) if sources else {}
            if attributes:
                annotation["attributes"] = attributes
            self.annotations.append(annotation)

    def finish(self, zf: zipfile.ZipFile) -> None:
        doc = {
            "info": {"description": "BUS Review consensus export", "version": "1.0"},
            "licenses": [],
            "categories": CATEGORIES,
            "images": self.images,
            "annotations": self.annotations,
        }
        zf.writestr(PATH, json.dumps(doc, separators=(",", ":")))
