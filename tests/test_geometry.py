"""annotator.geometry: validation rules, rasterisation, extraction and the pixel-exact round trip."""

import math

import cv2
import numpy as np
import PIL.Image
import pytest

from annotator import geometry
from annotator.geometry import BENIGN, MALIGNANT, ContourError, Lesion

W, H = 120, 80
SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def rgb_at(mask, x, y):
    return tuple(int(v) for v in mask[y, x])


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ring, rule",
    [
        ([[1, 1], [5, 5]], "too_few_points"),
        ([[1, 1], [5, 5], [1, 1]], "too_few_points"),
        ([[1, 1], [5, float("nan")], [9, 1]], "not_finite"),
        ([[1, 1], [5, float("inf")], [9, 1]], "not_finite"),
        ([[1, 1], [5, 500], [9, 1]], "out_of_bounds"),
        ([[-1, 1], [5, 5], [9, 1]], "out_of_bounds"),
        ([[0, 0], [W, 0], [5, 5]], "out_of_bounds"),
        ([[0, 0], [20, 20], [20, 0], [0, 20]], "self_intersecting"),
        ([[1, 1], [5, "a"], [9, 1]], "format"),
        ([[1, 1], [5], [9, 1]], "format"),
        ([[1, 1], [True, 2], [9, 1]], "format"),
        ("not a list", "format"),
        ([[i % 50, i % 40] for i in range(geometry.MAX_POINTS_PER_RING + 1)], "too_many_points"),
    ],
)
def test_validate_ring_names_the_rule_that_failed(ring, rule):
    with pytest.raises(ContourError) as e:
        geometry.validate_ring(ring, W, H)
    assert e.value.rule == rule


def test_validate_ring_accepts_a_closing_point_and_drops_it():
    assert geometry.validate_ring([*SQUARE, SQUARE[0]], W, H) == [[float(x), float(y)] for x, y in SQUARE]


def test_validate_ring_accepts_points_on_the_last_pixel():
    geometry.validate_ring([[0, 0], [W - 1, 0], [W - 1, H - 1]], W, H)


def test_touching_edges_are_not_a_crossing():
    """Traced outlines of thin necks revisit pixels; that is touching, not crossing."""
    bowtie_touch = [[0, 0], [10, 0], [5, 5], [10, 10], [0, 10], [5, 5]]
    assert geometry.find_crossing(bowtie_touch) is None


def test_validate_lesion_rejects_a_wrong_label():
    with pytest.raises(ContourError) as e:
        geometry.validate_lesion({"label": "suspicious", "points": SQUARE}, W, H)
    assert e.value.rule == "label"


def test_validate_lesion_checks_holes_too():
    with pytest.raises(ContourError) as e:
        geometry.validate_lesion({"label": BENIGN, "points": SQUARE, "holes": [[[1, 1], [2, 2]]]}, W, H)
    assert "hole 0" in e.value.message


# --- rasterisation ----------------------------------------------------------------------------


def test_rasterise_uses_the_exact_export_colours_and_black_background():
    mask = geometry.rasterise([Lesion(BENIGN, SQUARE), Lesion(MALIGNANT, [[50, 10], [70, 10], [60, 30]])], W, H)
    assert mask.shape == (H, W, 3) and mask.dtype == np.uint8
    assert rgb_at(mask, 20, 20) == (0, 255, 0)
    assert rgb_at(mask, 60, 15) == (255, 0, 0)
    assert rgb_at(mask, 100, 70) == (0, 0, 0)
    colours = {tuple(c) for c in mask.reshape(-1, 3)}
    assert colours == {(0, 0, 0), (0, 255, 0), (255, 0, 0)}, "no anti-aliased in-between colours"


def test_malignant_is_painted_over_benign_whatever_the_order():
    benign = Lesion(BENIGN, [[5, 5], [40, 5], [40, 40], [5, 40]])
    malignant = Lesion(MALIGNANT, SQUARE)
    for order in ([benign, malignant], [malignant, benign]):
        assert rgb_at(geometry.rasterise(order, W, H), 20, 20) == (255, 0, 0)


def test_rasterise_includes_the_boundary_pixels():
    mask = geometry.lesion_mask(Lesion(BENIGN, SQUARE), W, H)
    assert mask[10, 10] == 1 and mask[30, 30] == 1 and mask[31, 31] == 0
    assert mask.sum() == 21 * 21


def test_a_hole_is_left_black():
    ring = [[10, 10], [50, 10], [50, 50], [10, 50]]
    hole = [[20, 20], [40, 20], [40, 40], [20, 40]]
    mask = geometry.rasterise([Lesion(BENIGN, ring, [hole])], W, H)
    assert rgb_at(mask, 30, 30) == (0, 0, 0)
    assert rgb_at(mask, 20, 30) == (0, 255, 0), "the hole's border belongs to the lesion"
    assert rgb_at(mask, 15, 15) == (0, 255, 0)


def test_label_of_follows_the_info_csv_rule():
    assert geometry.label_of([]) == "Normal"
    assert geometry.label_of([Lesion(BENIGN, SQUARE)]) == "Benign"
    assert geometry.label_of([Lesion(BENIGN, SQUARE), Lesion(MALIGNANT, SQUARE)]) == "Malignant"


# --- extraction and round trips ---------------------------------------------------------------


def roundtrip(mask):
    reading = geometry.extract_lesions(mask)
    return reading, geometry.rasterise(reading.lesions, mask.shape[1], mask.shape[0])


def test_one_lesion_per_8_connected_component():
    mask = np.zeros((H, W, 3), np.uint8)
    mask[10:20, 10:20] = (0, 255, 0)
    mask[20:30, 20:30] = (0, 255, 0)  # touches the first only at a corner: same 8-component
    mask[50:60, 50:60] = (0, 255, 0)
    mask[50:60, 80:90] = (255, 0, 0)
    reading = geometry.extract_lesions(mask)
    labels = sorted(les.label for les in reading.lesions)
    assert labels == [BENIGN, BENIGN, MALIGNANT]


def test_holes_survive_extraction():
    mask = np.zeros((H, W, 3), np.uint8)
    cv2.circle(mask, (40, 40), 25, (0, 255, 0), -1)
    cv2.circle(mask, (40, 40), 8, (0, 0, 0), -1)
    reading, back = roundtrip(mask)
    assert len(reading.lesions) == 1 and len(reading.lesions[0].holes) == 1
    assert np.array_equal(back, mask)


def test_an_island_inside_a_hole_is_its_own_lesion_and_survives():
    mask = np.zeros((H, W, 3), np.uint8)
    cv2.circle(mask, (40, 40), 30, (0, 255, 0), -1)
    cv2.circle(mask, (40, 40), 15, (0, 0, 0), -1)
    cv2.circle(mask, (40, 40), 5, (0, 255, 0), -1)
    reading, back = roundtrip(mask)
    assert len(reading.lesions) == 2
    assert np.array_equal(back, mask)


@pytest.mark.parametrize("seed", range(40))
def test_random_masks_round_trip_pixel_identical(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((H, W, 3), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        colour = [(255, 0, 0), (0, 255, 0)][int(rng.integers(2))]
        centre = (int(rng.integers(W)), int(rng.integers(H)))
        if rng.random() < 0.5:
            cv2.ellipse(
                mask,
                centre,
                (int(rng.integers(3, 30)), int(rng.integers(3, 30))),
                float(rng.integers(180)),
                0,
                360,
                colour,
                -1,
            )
        else:
            pts = rng.integers(0, [W, H], size=(int(rng.integers(3, 9)), 2)).astype(np.int32)
            cv2.fillPoly(mask, [pts], colour)
        if rng.random() < 0.3:
            cv2.circle(mask, centre, int(rng.integers(1, 6)), (0, 0, 0), -1)
    reading, back = roundtrip(mask)
    speck_pixels = sum(area for *_, area in reading.dropped_specks)
    assert int((back != mask).any(axis=-1).sum()) == speck_pixels
    for lesion in reading.lesions:
        geometry.validate_lesion({"label": lesion.label, "points": lesion.points, "holes": lesion.holes}, W, H)


def test_a_one_pixel_speck_is_reported_not_silently_kept():
    mask = np.zeros((H, W, 3), np.uint8)
    mask[5, 5] = (255, 0, 0)
    reading = geometry.extract_lesions(mask)
    assert reading.lesions == [] and reading.dropped_specks == [(MALIGNANT, 5, 5, 1)]


def test_other_colours_are_counted():
    mask = np.zeros((H, W, 3), np.uint8)
    mask[0:2, 0:2] = (255, 255, 0)
    assert geometry.extract_lesions(mask).other_pixels == 4


def test_sample_masks_round_trip_pixel_identical(sample_dir):
    masks = sorted((sample_dir / "masks").glob("*.png"))
    assert len(masks) == 33
    for path in masks:
        mask = np.asarray(PIL.Image.open(path).convert("RGB"))
        reading, back = roundtrip(mask)
        assert np.array_equal(back, mask), path.name
        assert reading.dropped_specks == [] and reading.other_pixels == 0


def test_drawn_polygon_round_trips_through_its_mask():
    """A polygon a reader drew -> mask -> contours -> mask gives the same pixels."""
    t = np.linspace(0, 2 * math.pi, 40, endpoint=False)
    ring = np.c_[60 + 30 * np.cos(t) * (1 + 0.2 * np.sin(5 * t)), 40 + 20 * np.sin(t)].round(2).tolist()
    first = geometry.rasterise([Lesion(MALIGNANT, ring)], W, H)
    _, second = roundtrip(first)
    assert np.array_equal(first, second)


def test_pixel_area_and_bbox():
    lesion = Lesion(BENIGN, SQUARE)
    assert geometry.pixel_area(lesion, W, H) == 441
    assert geometry.bbox(lesion) == [10, 10, 21, 21]


def test_dice():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    assert geometry.dice(a, b) == 1.0
    a[0:5] = True
    b[0:5] = True
    assert geometry.dice(a, b) == 1.0
    b[:] = False
    b[5:] = True
    assert geometry.dice(a, b) == 0.0
