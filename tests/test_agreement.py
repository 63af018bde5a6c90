"""annotator.agreement: overlap, surface distances and lesion matching, by hand and against medpy."""

import json
import math

import cv2
import numpy as np
import pytest
from medpy.metric import binary as medpy_binary

from annotator import agreement, geometry
from annotator.agreement import MILLIMETRES, PIXELS, Spacing
from annotator.geometry import BENIGN, LABELS, MALIGNANT, Lesion

W, H = 240, 80


def square_mask(x0: int, y0: int, size: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[y0 : y0 + size, x0 : x0 + size] = True
    return m


def rect(x0: int, x1: int, y0: int = 10, y1: int = 29, label: str = BENIGN) -> Lesion:
    """A lesion painting columns x0..x1 and rows y0..y1, both inclusive."""
    return Lesion(label=label, points=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def strict_json(result) -> dict:
    """The result as JSON with NaN and infinity refused, read back."""
    return json.loads(json.dumps(result.as_dict(), allow_nan=False))


# --- hand-computed masks ----------------------------------------------------------------------


def test_squares_offset_by_three_pixels_give_hand_computed_figures_in_pixels():
    """Two 10x10 squares 3 px apart in x: 70 px in common; surface distances worked out by hand.

    Each 36-pixel ring, to the other ring: top and bottom rows 3,2,1 then seven 0; the side away
    from the shift 3 (eight pixels); the side inside the other square 1,2,3,3,3,3,2,1. Sum 54,
    the same both ways: ASSD 108/72 = 1.5; Hausdorff 3; the 95th percentile of the 72 pooled
    values falls among the 28 threes.
    """
    result = agreement.compare_masks(square_mask(10, 10, 10), square_mask(13, 10, 10))
    assert result.dice == pytest.approx(0.7)
    assert result.iou == pytest.approx(70 / 130)
    assert (result.first_pixels, result.second_pixels) == (100, 100)
    assert result.hausdorff == pytest.approx(3.0)
    assert result.hd95 == pytest.approx(3.0)
    assert result.assd == pytest.approx(1.5)
    assert result.unit == PIXELS


def test_squares_offset_with_spacing_give_millimetres():
    """Same squares, pixels 0.5 mm wide and 0.2 mm tall: the shift is 1.5 mm; the side inside
    the other square is nearer to the other's top or bottom row (0.2, 0.4, 0.6, 0.8 mm)."""
    result = agreement.compare_masks(square_mask(10, 10, 10), square_mask(13, 10, 10), Spacing(x_mm=0.5, y_mm=0.2))
    assert result.unit == MILLIMETRES
    assert result.hausdorff == pytest.approx(1.5)
    assert result.hd95 == pytest.approx(1.5)
    # one direction: rows 1.5+1.0+0.5 twice, far side 8 x 1.5, near side 2 x (0.2+0.4+0.6+0.8)
    assert result.assd == pytest.approx(22 / 36)
    assert result.dice == pytest.approx(0.7)  # overlap does not depend on the spacing


@pytest.mark.parametrize("dx, dy, expected", [(2, 0, 0.2), (0, 2, 0.6)])
def test_anisotropic_spacing_applies_x_to_columns_and_y_to_rows(dx, dy, expected):
    spacing = Spacing(x_mm=0.1, y_mm=0.3)
    result = agreement.compare_masks(square_mask(20, 20, 12), square_mask(20 + dx, 20 + dy, 12), spacing)
    assert result.hausdorff == pytest.approx(expected)


def test_hd95_is_the_percentile_of_the_pooled_distances():
    """One pixel against the same pixel plus a far one: distances 0 | 0, 20 pooled to [0, 0, 20];
    numpy's linear 95th percentile is 0 + 0.9 x 20 = 18 (the max of the directed ones would be 19)."""
    a = np.zeros((H, W), dtype=bool)
    a[5, 5] = True
    b = a.copy()
    b[25, 5] = True
    result = agreement.compare_masks(a, b)
    assert result.hausdorff == pytest.approx(20.0)
    assert result.hd95 == pytest.approx(18.0)
    assert result.assd == pytest.approx(20 / 3)
    assert result.dice == pytest.approx(2 / 3)


def test_hole_surface_counts_as_surface():
    """A 9x9 square with a 3x3 hole against the full square: the 12 pixels around the hole are
    2 px from the outer ring, everything else 0; 76 distances pooled."""
    full = square_mask(10, 10, 9)
    holed = full.copy()
    holed[13:16, 13:16] = False
    result = agreement.compare_masks(holed, full)
    assert result.dice == pytest.approx(144 / 153)
    assert result.hausdorff == pytest.approx(2.0)
    assert result.hd95 == pytest.approx(2.0)
    assert result.assd == pytest.approx(24 / 76)


def test_several_components_measure_to_the_nearest_surface():
    """Two 5x5 squares 30 px apart against the left one alone: the right square's ring is 26..30 px
    from the left one's right column (sum 448 over 16 pixels), the rest 0."""
    a = square_mask(10, 10, 5) | square_mask(40, 10, 5)
    b = square_mask(10, 10, 5)
    result = agreement.compare_masks(a, b)
    assert result.dice == pytest.approx(2 / 3)
    assert result.hausdorff == pytest.approx(30.0)
    assert result.hd95 == pytest.approx(30.0)
    assert result.assd == pytest.approx(448 / 48)


def test_surface_is_the_four_connected_boundary_and_the_frame_edge():
    m = square_mask(0, 0, 5, shape=(10, 10))
    s = agreement.surface(m)
    # a 5x5 square's ring (16 pixels), including its sides on the frame's edge
    assert int(s.sum()) == 16
    assert not s[1:4, 1:4].any()
    # a diagonal-only neighbour outside does not make a pixel surface
    plus = np.ones((5, 5), dtype=bool)
    plus[0, 0] = plus[0, 4] = plus[4, 0] = plus[4, 4] = False
    padded = np.zeros((9, 9), dtype=bool)
    padded[2:7, 2:7] = plus
    assert not agreement.surface(padded)[3, 3]


# --- empties ----------------------------------------------------------------------------------


def test_both_empty_masks_are_perfect_agreement():
    empty = np.zeros((H, W), dtype=bool)
    result = agreement.compare_masks(empty, empty, Spacing(0.1, 0.1))
    assert (result.dice, result.iou) == (1.0, 1.0)
    assert (result.hausdorff, result.hd95, result.assd) == (0.0, 0.0, 0.0)
    assert strict_json(result)["unit"] == "mm"


@pytest.mark.parametrize("first_empty", [True, False])
def test_one_empty_mask_gives_dice_zero_and_undefined_distances(first_empty):
    empty, full = np.zeros((H, W), dtype=bool), square_mask(10, 10, 10)
    a, b = (empty, full) if first_empty else (full, empty)
    result = agreement.compare_masks(a, b)
    assert (result.dice, result.iou) == (0.0, 0.0)
    assert (result.hausdorff, result.hd95, result.assd) == (None, None, None)
    data = strict_json(result)
    assert data["hd95"] is None and data["unit"] == "px"


def test_empty_layers_compare_as_perfect_agreement_and_serialise():
    result = agreement.compare_layers([], [], W, H)
    data = strict_json(result)
    assert data["whole"]["dice"] == 1.0 and data["whole"]["hd95"] == 0.0
    assert data["per_label"][BENIGN]["dice"] == 1.0
    assert data["lesions"]["matches"] == [] and data["lesions"]["missed"] == [] and data["lesions"]["added"] == []
    assert data["normal_lesion_disagreement"] is False
    assert data["first_image_label"] == data["second_image_label"] == "Normal"


def test_normal_against_lesion_is_a_disagreement_with_undefined_distances():
    result = agreement.compare_layers([], [rect(10, 40)], W, H, Spacing(0.08, 0.08))
    data = strict_json(result)
    assert data["normal_lesion_disagreement"] is True
    assert data["whole"]["dice"] == 0.0 and data["whole"]["hausdorff"] is None
    assert data["lesions"]["added"] == [0] and data["lesions"]["added_count"] == 1
    assert (data["first_image_label"], data["second_image_label"]) == ("Normal", "Benign")


def test_spacing_must_be_positive_and_finite():
    for bad in (0, -0.1, math.nan, math.inf, True, "0.1"):
        with pytest.raises(ValueError, match="spacing"):
            Spacing(x_mm=bad, y_mm=0.1)


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        agreement.compare_masks(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


# --- layers and labels ------------------------------------------------------------------------


def test_label_flip_is_counted_and_per_label_dice_drops():
    result = agreement.compare_layers([rect(10, 40)], [rect(10, 40, label=MALIGNANT)], W, H)
    assert result.whole.dice == 1.0 and result.whole.hausdorff == 0.0
    assert result.per_label[BENIGN].dice == 0.0 and result.per_label[MALIGNANT].dice == 0.0
    assert result.lesions.label_flips == 1
    assert result.lesions.confusion[BENIGN][MALIGNANT] == 1
    assert result.lesions.confusion[BENIGN][BENIGN] == 0
    data = strict_json(result)
    assert data["lesions"]["matches"][0]["label_flip"] is True
    assert (data["first_image_label"], data["second_image_label"]) == ("Benign", "Malignant")
    assert data["normal_lesion_disagreement"] is False


def test_per_label_overlap_uses_the_exported_colours_malignant_over_benign():
    first = [rect(10, 49), rect(30, 69, label=MALIGNANT)]  # overlap 30..49 painted malignant
    second = [rect(10, 29), rect(30, 69, label=MALIGNANT)]
    result = agreement.compare_layers(first, second, W, H)
    assert result.per_label[BENIGN].dice == 1.0
    assert result.per_label[MALIGNANT].dice == 1.0
    assert result.whole.dice == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_label_planes_are_the_colour_planes_of_the_exported_mask(seed):
    """Overlapping lesions of both labels, some with holes: malignant over benign, as exported."""
    rng = np.random.default_rng(seed)
    lesions = []
    for _ in range(8):
        x0, y0 = int(rng.integers(0, W - 50)), int(rng.integers(0, H - 40))
        lesion = rect(
            x0,
            x0 + int(rng.integers(10, 50)),
            y0,
            y0 + int(rng.integers(10, 40)),
            label=LABELS[int(rng.integers(0, 2))],
        )
        if rng.random() < 0.5:
            lesion.holes = [[[x0 + 2, y0 + 2], [x0 + 6, y0 + 2], [x0 + 6, y0 + 6], [x0 + 2, y0 + 6]]]
        lesions.append(lesion)
    whole, planes = agreement.label_planes(lesions, W, H)
    expected, other = geometry.colour_planes(geometry.rasterise(lesions, W, H))
    assert other == 0
    for label in LABELS:
        assert np.array_equal(planes[label], expected[label])
    assert np.array_equal(whole, expected[BENIGN] | expected[MALIGNANT])


def test_added_and_missed_lesions_are_counted_by_index():
    first = [rect(10, 40), rect(60, 90)]
    second = [rect(12, 42), rect(150, 200, label=MALIGNANT)]
    result = agreement.compare_layers(first, second, W, H)
    lesions = result.lesions
    assert [(m.first, m.second) for m in lesions.matches] == [(0, 0)]
    assert lesions.missed == [1]
    assert lesions.added == [1]
    match = lesions.matches[0]
    # 31 columns each, 2 px apart: 29 x 20 in common
    assert match.iou == pytest.approx(29 / 33)
    assert match.hausdorff == pytest.approx(2.0)
    assert match.unit == PIXELS


def test_match_distances_equal_those_of_the_two_lesions_alone_on_the_full_frame():
    """The per-match window is an optimisation only: same figures as the full-frame masks."""
    a = Lesion(BENIGN, [[0, 0], [50, 3], [40, 40], [2, 30]], holes=[[[10, 10], [20, 10], [20, 20], [10, 20]]])
    b = Lesion(BENIGN, [[3, 1], [55, 0], [45, 44], [0, 35]])
    spacing = Spacing(0.07, 0.11)
    match = agreement.match_lesions([a], [b], W, H, spacing).matches[0]
    full = agreement.compare_masks(geometry.lesion_mask(a, W, H), geometry.lesion_mask(b, W, H), spacing)
    assert (match.dice, match.iou) == (full.dice, full.iou)
    assert match.hausdorff == pytest.approx(full.hausdorff, abs=1e-12)
    assert match.hd95 == pytest.approx(full.hd95, abs=1e-12)
    assert match.assd == pytest.approx(full.assd, abs=1e-12)


# --- matching ---------------------------------------------------------------------------------


def test_swapped_order_matches_each_lesion_to_its_counterpart():
    first = [rect(10, 40), rect(100, 140, label=MALIGNANT)]
    second = [rect(101, 141, label=MALIGNANT), rect(11, 41)]
    lesions = agreement.match_lesions(first, second, W, H)
    assert [(m.first, m.second) for m in lesions.matches] == [(0, 1), (1, 0)]
    assert lesions.label_flips == 0 and lesions.missed == [] and lesions.added == []


def test_matching_maximises_total_iou_not_each_best_pair():
    """Columns (20 rows each): B1 = 0..99, B2 = 100..199; A1 = 30..149, A2 = 0..29.
    Greedy would pair A1-B1 (70/150) and leave A2; the best total is A1-B2 (50/170) + A2-B1 (30/100)."""
    first = [rect(30, 149), rect(0, 29)]
    second = [rect(0, 99), rect(100, 199)]
    lesions = agreement.match_lesions(first, second, W, H)
    assert [(m.first, m.second) for m in lesions.matches] == [(0, 1), (1, 0)]
    assert lesions.matches[0].iou == pytest.approx(50 / 170)
    assert lesions.matches[1].iou == pytest.approx(30 / 100)


def test_split_lesion_matches_its_larger_part_and_adds_the_other():
    lesions = agreement.match_lesions([rect(0, 99)], [rect(0, 59), rect(60, 99)], W, H)
    assert [(m.first, m.second) for m in lesions.matches] == [(0, 0)]
    assert lesions.matches[0].iou == pytest.approx(0.6)
    assert lesions.added == [1] and lesions.missed == []


def test_overlap_below_the_threshold_is_no_match():
    first, second = [rect(0, 99)], [rect(95, 194)]  # 5 columns in common of 195: IoU 0.026
    lesions = agreement.match_lesions(first, second, W, H)
    assert lesions.matches == [] and lesions.missed == [0] and lesions.added == [0]
    assert agreement.MIN_MATCH_IOU == 0.1
    # the threshold is the rule: lowered under that IoU, the same pair matches
    assert len(agreement.match_lesions(first, second, W, H, min_iou=0.02).matches) == 1


def test_overlap_exactly_at_the_threshold_is_a_match():
    """110 columns each: 20 in common of 200 is IoU 0.1 (matches); 19 of 201 is not."""
    at = agreement.match_lesions([rect(0, 109)], [rect(90, 199)], W, H)
    assert [m.iou for m in at.matches] == [pytest.approx(0.1)]
    below = agreement.match_lesions([rect(0, 109)], [rect(91, 200)], W, H)
    assert below.matches == []


def test_lesion_off_the_frame_matches_nothing():
    lesions = agreement.match_lesions([rect(10, 40)], [Lesion(BENIGN, [[500, 500], [510, 500], [510, 510]])], W, H)
    assert lesions.matches == [] and lesions.missed == [0] and lesions.added == [0]


# --- against an independent implementation ----------------------------------------------------


def random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1-3 ellipses, some with an elliptic hole, sometimes touching the frame, plus a few specks."""
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(3, w // 3)), int(rng.integers(3, h // 3)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(m, centre, axes, angle, 0, 360, 1, -1)
        if rng.random() < 0.5 and min(axes) > 6:
            cv2.ellipse(m, centre, (axes[0] // 3, axes[1] // 3), angle, 0, 360, 0, -1)
    for _ in range(int(rng.integers(0, 4))):
        m[int(rng.integers(0, h)), int(rng.integers(0, w))] = 1
    return m.astype(bool)


@pytest.mark.parametrize("seed", range(40))
def test_distances_equal_medpy_on_random_shapes(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(30, 120)), int(rng.integers(30, 160))
    a, b = random_mask(rng, h, w), random_mask(rng, h, w)
    if seed % 4 == 0:
        b = np.roll(a, (int(rng.integers(-5, 6)), int(rng.integers(-5, 6))), axis=(0, 1))
    spacing = None if seed % 3 == 0 else Spacing(float(rng.uniform(0.03, 0.5)), float(rng.uniform(0.03, 0.5)))
    voxelspacing = None if spacing is None else (spacing.y_mm, spacing.x_mm)  # medpy: array axis order
    result = agreement.compare_masks(a, b, spacing)
    assert result.hausdorff == pytest.approx(medpy_binary.hd(a, b, voxelspacing), abs=1e-6)
    assert result.hd95 == pytest.approx(medpy_binary.hd95(a, b, voxelspacing), abs=1e-6)
    assert result.assd == pytest.approx(medpy_binary.assd(a, b, voxelspacing), abs=1e-6)
    assert result.dice == pytest.approx(medpy_binary.dc(a, b), abs=1e-12)
    assert result.iou == pytest.approx(medpy_binary.jc(a, b), abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_layer_and_match_distances_equal_medpy_on_random_lesions(seed):
    """Lesions with holes, several per layer, anisotropic spacing, through the rasterisation."""
    rng = np.random.default_rng(100 + seed)
    w, h = 200, 140

    def blob(cx: float, cy: float, r: float) -> Lesion:
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        radius = r * (1 + 0.25 * np.sin(3 * t + rng.uniform(0, 6)))
        ring = np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)
        hole = np.stack([cx + r / 3 * np.cos(t), cy + r / 3 * np.sin(t)], axis=1)
        label = BENIGN if rng.random() < 0.5 else MALIGNANT
        holes = [np.clip(hole, 0, None).tolist()] if rng.random() < 0.5 else []
        return Lesion(label, np.clip(ring, [0, 0], [w - 1, h - 1]).tolist(), holes)

    centres = [(40, 50), (120, 70), (170, 110)][: int(rng.integers(1, 4))]
    first = [blob(x, y, float(rng.uniform(10, 25))) for x, y in centres]
    second = [blob(x + rng.uniform(-4, 4), y + rng.uniform(-4, 4), float(rng.uniform(10, 25))) for x, y in centres]
    spacing = Spacing(float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.05, 0.2)))
    vs = (spacing.y_mm, spacing.x_mm)
    result = agreement.compare_layers(first, second, w, h, spacing)
    whole_a, _ = agreement.label_planes(first, w, h)
    whole_b, _ = agreement.label_planes(second, w, h)
    assert result.whole.hd95 == pytest.approx(medpy_binary.hd95(whole_a, whole_b, vs), abs=1e-6)
    assert result.whole.assd == pytest.approx(medpy_binary.assd(whole_a, whole_b, vs), abs=1e-6)
    assert result.whole.hausdorff == pytest.approx(medpy_binary.hd(whole_a, whole_b, vs), abs=1e-6)
    assert len(result.lesions.matches) == len(centres)
    for m in result.lesions.matches:
        a = geometry.lesion_mask(first[m.first], w, h).astype(bool)
        b = geometry.lesion_mask(second[m.second], w, h).astype(bool)
        assert m.hd95 == pytest.approx(medpy_binary.hd95(a, b, vs), abs=1e-6)
        assert m.dice == pytest.approx(medpy_binary.dc(a, b), abs=1e-12)
    strict_json(result)
