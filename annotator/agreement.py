"""Agreement between two layers (two readers' drawings of one image): overlap, surface distances,
per-lesion matching. Pure functions on ``geometry.Lesion`` lists and binary masks; no Django.

Definitions (they are what a methods section states; the tests check them by hand and against
medpy 0.5.2, which uses the same ones):

- Masks are the project's own rasterisation (``geometry.rasterise`` / ``geometry.lesion_mask``).
  The whole mask is every lesion pixel of any label; the per-label masks are the BUS-UCLM colour
  planes, malignant painted over benign where the two overlap.
- Dice = 2|A∩B| / (|A|+|B|), IoU = |A∩B| / |A∪B|.
- Surface: the mask pixels with at least one 4-connected neighbour outside the mask (the mask
  minus its erosion by the 3x3 cross); outside the image counts as outside the mask, so a mask
  touching the frame has a surface there. A one-pixel-wide mask is all surface.
- Distances: from each surface pixel's centre to the nearest surface pixel's centre of the other
  mask (exact Euclidean nearest neighbour). With a pixel spacing (x_mm, y_mm; they may differ) the
  distances are in millimetres, otherwise in pixels; ``unit`` says which.
- Hausdorff = the largest of those distances, both directions.
- HD95 = the 95th percentile (linear interpolation, numpy's default) of the distances of both
  directions pooled into one set (medpy's ``hd95``; not the max of two directed percentiles).
- ASSD = the mean of the distances of both directions pooled into one set (medpy 0.5's ``assd``,
  the MICCAI 2007 liver challenge's definition); not the mean of the two directed means, which
  differs when the two surfaces have different sizes.
- Distances are reported for the whole mask and for each matched lesion; per label, overlap only.
- Empty masks: both empty is perfect agreement (Dice 1, IoU 1, distances 0); exactly one empty is
  Dice 0, IoU 0 and distances undefined (None). Results never hold NaN or infinity.

Lesion matching: the lesions of the two layers are paired one-to-one so that the total IoU of the
pairs is the largest possible (Hungarian algorithm), counting only pairs whose IoU is at least
``MIN_MATCH_IOU``; a lesion left unpaired is *missed* (only in the first layer) or *added* (only
in the second). A matched pair whose labels differ is a label flip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from annotator import geometry
from annotator.geometry import BENIGN, LABELS, MALIGNANT, Lesion

# Two lesions count as the same lesion when their IoU reaches this. Low on purpose, a choice of
# this project rather than a standard: a reviewer who redraws an ill-defined margin generously
# still means the same lesion (the per-match Dice then shows how well they agree), while two
# lesions that merely touch (a few pixels in common) do not pair. ``min_iou=`` changes it.
MIN_MATCH_IOU = 0.1

PIXELS = "px"
MILLIMETRES = "mm"

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class Spacing:
    """Pixel size in millimetres along x (columns) and y (rows)."""

    x_mm: float
    y_mm: float

    def __post_init__(self) -> None:
        for name in ("x_mm", "y_mm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"spacing {name} must be a positive finite number, got {value!r}")


@dataclass
class Overlap:
    dice: float
    iou: float
    first_pixels: int  # so a reader of the figures can tell "both empty" from "both agree"
    second_pixels: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MaskAgreement:
    dice: float
    iou: float
    first_pixels: int
    second_pixels: int
    hausdorff: float | None
    hd95: float | None
    assd: float | None
    unit: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LesionMatch:
    first: int  # index of the lesion in the first layer
    second: int  # index in the second layer
    first_label: str
    second_label: str
    iou: float
    dice: float
    hausdorff: float | None
    hd95: float | None
    assd: float | None
    unit: str

    @property
    def label_flip(self) -> bool:
        return self.first_label != self.second_label

    def as_dict(self) -> dict:
        return {**asdict(self), "label_flip": self.label_flip}


@dataclass
class LesionAgreement:
    matches: list[LesionMatch]
    missed: list[int]  # first-layer lesions with no match
    added: list[int]  # second-layer lesions with no match
    min_iou: float
    # confusion[first label][second label] = matched pairs; the diagonal is agreement
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def label_flips(self) -> int:
        return sum(1 for m in self.matches if m.label_flip)

    def as_dict(self) -> dict:
        return {
            "matches": [m.as_dict() for m in self.matches],
            "matched": len(self.matches),
            "missed": list(self.missed),
            "added": list(self.added),
            "missed_count": len(self.missed),
            "added_count": len(self.added),
            "label_flips": self.label_flips,
            "confusion": {a: dict(row) for a, row in self.confusion.items()},
            "min_iou": self.min_iou,
        }


@dataclass
class ImageAgreement:
    whole: MaskAgreement
    per_label: dict[str, Overlap]
    lesions: LesionAgreement
    first_image_label: str  # Normal, Benign or Malignant, as in INFO.csv
    second_image_label: str
    unit: str

    @property
    def normal_lesion_disagreement(self) -> bool:
        """One layer calls the image normal (no lesion), the other draws at least one lesion."""
        return (self.first_image_label == "Normal") != (self.second_image_label == "Normal")

    def as_dict(self) -> dict:
        return {
            "whole": self.whole.as_dict(),
            "per_label": {label: o.as_dict() for label, o in self.per_label.items()},
            "lesions": self.lesions.as_dict(),
            "first_image_label": self.first_image_label,
            "second_image_label": self.second_image_label,
            "normal_lesion_disagreement": self.normal_lesion_disagreement,
            "unit": self.unit,
        }


# --- masks ------------------------------------------------------------------------------------


def overlap(a: np.ndarray, b: np.ndarray) -> Overlap:
    """Dice and IoU of two binary masks of one shape; both empty is 1, one empty is 0."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} and {b.shape}")
    na, nb = int(np.count_nonzero(a)), int(np.count_nonzero(b))
    inter = int(np.count_nonzero(a & b))
    return _overlap(na, nb, inter)


def _overlap(na: int, nb: int, inter: int) -> Overlap:
    if na + nb == 0:
        return Overlap(dice=1.0, iou=1.0, first_pixels=0, second_pixels=0)
    return Overlap(dice=2.0 * inter / (na + nb), iou=inter / (na + nb - inter), first_pixels=na, second_pixels=nb)


def surface(mask: np.ndarray) -> np.ndarray:
    """Boolean surface of a binary mask: its pixels with a 4-neighbour outside it (or the frame)."""
    m = np.ascontiguousarray(mask, dtype=bool)
    eroded = cv2.erode(m.view(np.uint8), _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return m & ~eroded.view(bool)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Spacing | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (a's surface to b's, b's to a's) of two non-empty masks."""
    a = np.ascontiguousarray(a, dtype=bool)
    b = np.ascontiguousarray(b, dtype=bool)
    if not a.any() or not b.any():
        raise ValueError("surface distances need two non-empty masks")
    # Work in the bounding box of both masks: the surfaces and every distance between them are
    # the same as on the full frame (a mask pixel on the box's edge has its outward neighbour
    # outside both masks, so it is surface either way), at a fraction of the cost for lesions
    # that cover a small part of the image.
    x, y, w, h = cv2.boundingRect((a | b).view(np.uint8))
    pa = _surface_points(a[y : y + h, x : x + w], spacing)
    pb = _surface_points(b[y : y + h, x : x + w], spacing)
    # Nearest surface pixel by k-d tree on the surface pixels alone, in millimetres when spaced:
    # exact Euclidean distances (as a distance transform gives) at a cost that follows the
    # surfaces' length, not the area between them (half the time of scipy's distance transform on
    # BUS-UCLM-size frames).
    return cKDTree(pb).query(pa)[0], cKDTree(pa).query(pb)[0]


def _surface_points(mask: np.ndarray, spacing: Spacing | None) -> np.ndarray:
    """(n, 2) float positions (x, y) of the surface pixels' centres, scaled to mm if spaced."""
    points = cv2.findNonZero(surface(mask).view(np.uint8)).reshape(-1, 2).astype(np.float64)
    if spacing is not None:
        points *= (spacing.x_mm, spacing.y_mm)
    return points


def compare_masks(a: np.ndarray, b: np.ndarray, spacing: Spacing | None = None) -> MaskAgreement:
    """Dice, IoU, Hausdorff, HD95 and ASSD of two binary masks (see the module's definitions)."""
    o = overlap(a, b)
    unit = PIXELS if spacing is None else MILLIMETRES
    if o.first_pixels == 0 and o.second_pixels == 0:
        hd = hd95 = assd = 0.0
    elif o.first_pixels == 0 or o.second_pixels == 0:
        hd = hd95 = assd = None
    else:
        d_ab, d_ba = surface_distances(a, b, spacing)
        pooled = np.concatenate([d_ab, d_ba])
        hd = float(pooled.max())
        hd95 = float(np.percentile(pooled, 95))
        assd = float(pooled.mean())
    return MaskAgreement(
        dice=o.dice,
        iou=o.iou,
        first_pixels=o.first_pixels,
        second_pixels=o.second_pixels,
        hausdorff=hd,
        hd95=hd95,
        assd=assd,
        unit=unit,
    )


# --- layers -----------------------------------------------------------------------------------


def label_planes(lesions: Sequence[Lesion], width: int, height: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The whole mask and one mask per label, as the exported BUS-UCLM mask paints them."""
    return _label_planes(lesions, [_place(lesion, width, height) for lesion in lesions], width, height)


def _label_planes(
    lesions: Sequence[Lesion], placed: Sequence[_Placed | None], width: int, height: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    # The planes of ``geometry.rasterise``'s RGB mask (malignant painted over benign), painted
    # straight into one boolean plane per label from each lesion's box: reading them back out of
    # the RGB mask (strided channel views) cost three times the painting.
    planes = {label: np.zeros((height, width), dtype=bool) for label in LABELS}
    for lesion, p in zip(lesions, placed, strict=True):
        if p is not None:
            planes[lesion.label][p.y0 : p.y1, p.x0 : p.x1] |= p.box
    planes[BENIGN] &= ~planes[MALIGNANT]
    return planes[BENIGN] | planes[MALIGNANT], planes


def compare_layers(
    first: Sequence[Lesion],
    second: Sequence[Lesion],
    width: int,
    height: int,
    spacing: Spacing | None = None,
    *,
    min_iou: float = MIN_MATCH_IOU,
) -> ImageAgreement:
    """Agreement of two layers of one image: whole mask, per label, per lesion."""
    _check_min_iou(min_iou)
    # Each lesion rasterised once, in its box, for the layer's planes and for the matching.
    pa = [_place(lesion, width, height) for lesion in first]
    pb = [_place(lesion, width, height) for lesion in second]
    whole_a, planes_a = _label_planes(first, pa, width, height)
    whole_b, planes_b = _label_planes(second, pb, width, height)
    return ImageAgreement(
        whole=compare_masks(whole_a, whole_b, spacing),
        per_label={label: overlap(planes_a[label], planes_b[label]) for label in LABELS},
        lesions=_match(first, second, pa, pb, spacing, min_iou),
        first_image_label=geometry.label_of(first),
        second_image_label=geometry.label_of(second),
        unit=PIXELS if spacing is None else MILLIMETRES,
    )


# --- lesions ----------------------------------------------------------------------------------


@dataclass
class _Placed:
    x0: int
    y0: int
    box: np.ndarray  # bool, the lesion's own pixels in its bounding box
    area: int

    @property
    def x1(self) -> int:
        return self.x0 + self.box.shape[1]

    @property
    def y1(self) -> int:
        return self.y0 + self.box.shape[0]


def _place(lesion: Lesion, width: int, height: int) -> _Placed | None:
    placed = geometry.lesion_box(lesion, width, height)
    if placed is None:
        return None
    x0, y0, box = placed
    area = int(np.count_nonzero(box))
    return _Placed(x0, y0, box.view(bool), area) if area else None


def _intersection(p: _Placed, q: _Placed) -> int:
    x0, y0 = max(p.x0, q.x0), max(p.y0, q.y0)
    x1, y1 = min(p.x1, q.x1), min(p.y1, q.y1)
    if x1 <= x0 or y1 <= y0:
        return 0
    a = p.box[y0 - p.y0 : y1 - p.y0, x0 - p.x0 : x1 - p.x0]
    b = q.box[y0 - q.y0 : y1 - q.y0, x0 - q.x0 : x1 - q.x0]
    return int(np.count_nonzero(a & b))


def _pair_window(p: _Placed, q: _Placed) -> tuple[np.ndarray, np.ndarray]:
    """Both lesions' masks in their common bounding box (enough: see ``surface_distances``)."""
    x0, y0 = min(p.x0, q.x0), min(p.y0, q.y0)
    x1, y1 = max(p.x1, q.x1), max(p.y1, q.y1)
    out = []
    for r in (p, q):
        m = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        m[r.y0 - y0 : r.y1 - y0, r.x0 - x0 : r.x1 - x0] = r.box
        out.append(m)
    return out[0], out[1]


def match_lesions(
    first: Sequence[Lesion],
    second: Sequence[Lesion],
    width: int,
    height: int,
    spacing: Spacing | None = None,
    *,
    min_iou: float = MIN_MATCH_IOU,
) -> LesionAgreement:
    """Pair the lesions one-to-one by maximum total IoU among pairs with IoU >= ``min_iou``.

    Each lesion is taken alone (``geometry.lesion_mask``), not as painted in the layer's mask, so
    a lesion partly covered by another keeps its whole outline. A lesion that paints no pixel
    (off the frame) can match nothing.
    """
    _check_min_iou(min_iou)
    pa = [_place(lesion, width, height) for lesion in first]
    pb = [_place(lesion, width, height) for lesion in second]
    return _match(first, second, pa, pb, spacing, min_iou)


def _check_min_iou(min_iou: float) -> None:
    if not 0 < min_iou <= 1:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")


def _match(
    first: Sequence[Lesion],
    second: Sequence[Lesion],
    pa: Sequence[_Placed | None],
    pb: Sequence[_Placed | None],
    spacing: Spacing | None,
    min_iou: float,
) -> LesionAgreement:
    iou = np.zeros((len(pa), len(pb)))
    for i, p in enumerate(pa):
        for j, q in enumerate(pb):
            if p is None or q is None:
                continue
            inter = _intersection(p, q)
            if inter:
                iou[i, j] = inter / (p.area + q.area - inter)
    # Pairs under the threshold weigh nothing, so the assignment maximises the total IoU of the
    # pairs that count; a zero-weight pair it returns is no match.
    weights = np.where(iou >= min_iou, iou, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True) if weights.size else ([], [])
    unit = PIXELS if spacing is None else MILLIMETRES
    matches: list[LesionMatch] = []
    for i, j in zip(rows, cols, strict=True):
        if weights[i, j] <= 0:
            continue
        a, b = _pair_window(pa[i], pb[j])
        m = compare_masks(a, b, spacing)
        matches.append(
            LesionMatch(
                first=int(i),
                second=int(j),
                first_label=first[i].label,
                second_label=second[j].label,
                iou=m.iou,
                dice=m.dice,
                hausdorff=m.hausdorff,
                hd95=m.hd95,
                assd=m.assd,
                unit=unit,
            )
        )
    matches.sort(key=lambda m: m.first)
    matched_a = {m.first for m in matches}
    matched_b = {m.second for m in matches}
    confusion = {a: {b: 0 for b in LABELS} for a in LABELS}
    for m in matches:
        confusion[m.first_label][m.second_label] += 1
    return LesionAgreement(
        matches=matches,
        missed=[i for i in range(len(first)) if i not in matched_a],
        added=[j for j in range(len(second)) if j not in matched_b],
        min_iou=min_iou,
        confusion=confusion,
    )
