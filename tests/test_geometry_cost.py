"""annotator.geometry under load: the near-linear crossing check keeps the rules, the layer caps
refuse before parsing, and rasterising in the lesion's box is pixel-identical to the full frame.

Speed itself is measured in bench/geometry_cost.py; nothing here is timed.
"""

import cv2
import numpy as np
import PIL.Image
import pytest

from annotator import geometry
from annotator.geometry import BENIGN, MALIGNANT, ContourError, Lesion
from bench.reference_geometry import (
    _orient,
    _orient_many,
    brute_force_crossing,
    old_extract_lesions,
    old_lesion_mask,
    old_rasterise,
)

W, H = 120, 80


# --- the reference: the quadratic check as it was, kept verbatim ------------------------------


def edges_cross(points, i, j):
    """Edges i and j of the ring cross properly (the reference's test on one pair)."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    a, b = p[[i, j]], p[[(i + 1) % n, (j + 1) % n]]
    d1, d2 = _orient(a[0], b[0], a[1:]), _orient(a[0], b[0], b[1:])
    d3, d4 = _orient_many(a[1:], b[1:], a[0]), _orient_many(a[1:], b[1:], b[0])
    return bool(((d1 * d2 < 0) & (d3 * d4 < 0))[0])


def assert_same_verdict(ring):
    expected = brute_force_crossing(ring)
    found = geometry.find_crossing(ring)
    assert (found is None) == (expected is None), (ring, expected, found)
    if found is not None:
        assert edges_cross(ring, *found), (ring, found)


# --- the crossing check keeps the rules -------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_crossing_verdict_matches_brute_force_on_random_grid_rings(seed):
    """Points on a tiny grid: repeated points, collinear overlaps, touches and crossings galore."""
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(4, 30))
        side = int(rng.integers(3, 8))
        assert_same_verdict(rng.integers(0, side, size=(n, 2)).tolist())


@pytest.mark.parametrize("seed", range(5))
def test_crossing_verdict_matches_brute_force_on_quarter_pixel_rings(seed):
    """Fractions of a pixel (dyadic, so the reference's float arithmetic is exact too)."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(300):
        n = int(rng.integers(4, 30))
        assert_same_verdict((rng.integers(0, 13, size=(n, 2)) / 4).tolist())


@pytest.mark.parametrize("seed", range(5))
def test_crossing_verdict_matches_brute_force_on_random_real_rings(seed):
    """Random real coordinates: almost all of these rings cross themselves somewhere."""
    rng = np.random.default_rng(200 + seed)
    verdicts = set()
    for _ in range(200):
        n = int(rng.integers(4, 60))
        ring = (rng.random((n, 2)) * [W - 1, H - 1]).tolist()
        assert_same_verdict(ring)
        verdicts.add(geometry.find_crossing(ring) is None)
    assert verdicts == {True, False}, "the rings must include both verdicts"


@pytest.mark.parametrize("seed", range(5))
def test_crossing_verdict_matches_brute_force_on_back_and_forth_rings(seed):
    """A path and the same path back along the same pixels: touching everywhere, crossing only
    where the path itself crosses."""
    rng = np.random.default_rng(300 + seed)
    for _ in range(200):
        steps = rng.integers(-1, 2, size=(int(rng.integers(2, 25)), 2))
        path = (np.cumsum(steps, axis=0) + 5).tolist()
        assert_same_verdict(path + path[-2:0:-1])


@pytest.mark.parametrize("seed", range(3))
def test_crossing_verdict_matches_brute_force_on_star_polygons(seed):
    """Long edges all through the same region: every bounding box overlaps every other."""
    rng = np.random.default_rng(400 + seed)
    for _ in range(50):
        n = int(rng.integers(8, 80))
        angle = np.sort(rng.random(n)) * 2 * np.pi
        radius = np.where(np.arange(n) % 2 == 0, 39, rng.integers(0, 4, n))
        ring = np.c_[60 + radius * np.cos(angle), 40 + radius * np.sin(angle)].round().tolist()
        assert_same_verdict(ring)
        assert_same_verdict(ring[::2] + ring[1::2])  # the same points in another order: crossings


def drawn_ring(rng, n, *, decimals=1):
    """A wavy oval as a reader draws one (simple), coordinates to 0.1 px."""
    angle = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
    radius = 30 + 6 * np.sin(3 * angle) + rng.uniform(-0.5, 0.5, n)
    return np.round(np.c_[60 + radius * np.cos(angle), 40 + radius * np.sin(angle) * 0.9], decimals).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_the_pairwise_filter_never_clears_a_ring_that_crosses(seed):
    """``_may_cross`` may only skip the sweep: on rings that cross (found by the brute force) it
    must say so, whatever the coordinates (0.1 px, integers with touching, random reals)."""
    rng = np.random.default_rng(500 + seed)
    crossing = 0
    for k in range(400):
        n = int(rng.integers(4, 60))
        ring = [
            drawn_ring(rng, n),
            rng.integers(0, 6, size=(n, 2)).tolist(),
            (rng.random((n, 2)) * [W - 1, H - 1]).tolist(),
        ][k % 3]
        if k % 2:  # one vertex pulled next to another's: near-touching, often crossing
            i = int(rng.integers(n))
            ring[i] = [ring[(i + 2) % n][0] + float(rng.normal(0, 0.5)), ring[(i + 2) % n][1]]
        if brute_force_crossing(ring) is not None:
            crossing += 1
            assert geometry._may_cross(np.asarray(ring, dtype=np.float64)), ring
        assert_same_verdict(ring)
    assert crossing > 50


def test_the_pairwise_filter_clears_drawn_rings_without_the_sweep(monkeypatch):
    """What makes a save's check cheap: a simple drawn ring is decided by the filter alone."""
    rng = np.random.default_rng(9)
    rings = [drawn_ring(rng, int(rng.integers(8, 120))) for _ in range(50)]

    def no_sweep(*args):
        raise AssertionError("the sweep ran")

    monkeypatch.setattr(geometry, "_Sweep", no_sweep)
    for ring in rings:
        assert brute_force_crossing(ring) is None
        assert geometry.find_crossing(ring) is None


def test_plain_points_are_read_as_the_checked_path_reads_them():
    rng = np.random.default_rng(11)
    for ring in [drawn_ring(rng, 40), [[0, 0], [W - 1, 0], [W - 1, H - 1]], [(1, 2.5), [3, 4], [5.25, 6]]]:
        assert geometry._plain_points(ring, W, H) == geometry._checked_points(ring, W, H, "contour")
    # Anything unusual is left to the checked path, which names the fault.
    for ring in [[[1, 1], [True, 2]], [[1, 1], [2, "3"]], [[1, 1], [2]], [[1, float("nan")]], [[W, 1]], [[1, H]]]:
        assert geometry._plain_points(ring, W, H) is None
    assert geometry._plain_points([[1, 1], [10**400, 2]], W, H) is None


def test_crossing_verdict_matches_brute_force_on_rings_traced_from_the_sample(sample_dir):
    """Every ring the real masks give (all valid), and each with one vertex moved (some cross)."""
    rng = np.random.default_rng(7)
    rings = []
    for path in sorted((sample_dir / "masks").glob("*.png")):
        for lesion in geometry.extract_lesions(np.asarray(PIL.Image.open(path).convert("RGB"))).lesions:
            rings += [lesion.points, *lesion.holes]
    assert len(rings) >= 16  # 16 lesion outlines in the 33 masks (the rest are normal)
    crossed = 0
    for ring in rings:
        assert geometry.find_crossing(ring) is None and brute_force_crossing(ring) is None
        for _ in range(5):
            moved = [list(p) for p in ring]
            k = int(rng.integers(len(moved)))
            moved[k] = [moved[k][0] + int(rng.integers(-15, 16)), moved[k][1] + int(rng.integers(-15, 16))]
            assert_same_verdict(moved)
            crossed += geometry.find_crossing(moved) is not None
    assert crossed > 0, "some moved vertices must make a crossing"


@pytest.mark.parametrize(
    "ring, crosses",
    [
        ([[0, 0], [10, 0], [10, 10], [0, 10]], False),
        ([[0, 0], [20, 20], [20, 0], [0, 20]], True),  # a bow tie
        ([[0, 0], [10, 0], [5, 5], [10, 10], [0, 10], [5, 5]], False),  # two loops touching at a vertex
        ([[0, 0], [10, 0], [10, 10], [5, 0], [0, 10]], False),  # T-touch: a vertex on an edge
        ([[0, 0], [0, 0], [10, 0], [10, 0], [10, 10], [0, 10], [0, 10]], False),  # repeated points
        ([[0, 0], [10, 0], [10, 1], [2, 1], [2, 0], [8, 0], [8, -3], [0, -3]], False),  # collinear overlap
        ([[0, 0], [5, 0], [5, 5], [5, 0], [10, 0], [10, 10], [0, 10]], False),  # a spur traced out and back
        ([[0, 0], [0, 10], [0, 5], [5, 5], [0, 5], [-5, 5], [-5, 0]], False),  # vertical back and forth
        ([[0, 0], [0, 10], [3, 10], [3, 2], [-3, 2], [-3, 0]], True),  # crosses a vertical edge
        ([[0, 0], [4, 4], [4, 0], [0, 4], [2, 2], [1, 3]], True),  # a crossing where a third edge ends
        ([[0, 0], [2, 2], [4, 0], [4, 4], [2, 2], [0, 4]], False),  # figure eight through a shared vertex
        ([[0, 0], [4, 0], [4, 4], [0, 4], [2, -2]], True),  # the closing edges cross
    ],
)
def test_touching_is_allowed_and_crossing_is_not(ring, crosses):
    assert (geometry.find_crossing(ring) is not None) is crosses
    assert (brute_force_crossing(ring) is not None) is crosses


def test_a_long_close_edged_zig_zag_is_valid():
    """10,000 points whose edges all span the image a tenth of a pixel apart: the adversarial
    ring for a grid or a box index (speed in bench/geometry_cost.py)."""
    zig = [[10.0 if i % 2 == 0 else 800.0, 5 + i * 0.1] for i in range(geometry.MAX_POINTS_PER_RING - 3)]
    ring = [*zig, [805.0, zig[-1][1] + 1], [805.0, 2.0], [5.0, 2.0]]
    assert geometry.validate_ring(ring, 856, 1200) == ring
    ring[5000] = [900.0, 0.0]
    with pytest.raises(ContourError) as e:
        geometry.validate_ring(ring, 1000, 1200)
    assert e.value.rule == "self_intersecting"


# --- the layer caps ---------------------------------------------------------------------------


def lesion(points, holes=(), label=BENIGN):
    return {"label": label, "points": points, "holes": list(holes)}


SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]


def test_validate_lesions_returns_the_lesions():
    hole = [[15, 15], [20, 15], [20, 20]]
    lesions = geometry.validate_lesions([lesion(SQUARE, [hole]), lesion(SQUARE, label=MALIGNANT)], W, H)
    assert [les.label for les in lesions] == [BENIGN, MALIGNANT]
    assert lesions[0].holes == [[[15.0, 15.0], [20.0, 15.0], [20.0, 20.0]]]


def test_validate_lesions_refuses_more_than_max_lesions():
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions([lesion(SQUARE)] * (geometry.MAX_LESIONS + 1), W, H)
    assert e.value.rule == "too_many_lesions"
    assert len(geometry.validate_lesions([lesion(SQUARE)] * geometry.MAX_LESIONS, W, H)) == geometry.MAX_LESIONS


def test_validate_lesions_refuses_too_many_points_before_reading_any():
    """Malformed points past the cap: the cap answers, so no point was parsed."""
    per_ring = geometry.MAX_POINTS_PER_RING
    rings = geometry.MAX_POINTS_PER_LAYER // per_ring + 1
    raw = [lesion([None] * per_ring) for _ in range(rings)]
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions(raw, W, H)
    assert e.value.rule == "too_many_points"


def test_validate_lesions_counts_the_points_of_holes():
    holes = [[None] * 1000] * (geometry.MAX_POINTS_PER_LAYER // 1000)
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions([lesion([None] * 10, holes)], W, H)
    assert e.value.rule == "too_many_points"


def test_validate_lesions_counts_each_ring_as_at_least_three_points():
    """A flood of empty hole rings is refused by the cap, not read one by one."""
    holes = [[]] * (geometry.MAX_POINTS_PER_LAYER // 3 + 1)
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions([lesion(SQUARE, holes)], W, H)
    assert e.value.rule == "too_many_points"


def test_validate_lesions_accepts_exactly_the_point_cap():
    ring = [[x % 100, 0] for x in range(200)]  # collinear points, twice over: touching only
    ring[-1] = [50, 50]
    count = geometry.MAX_POINTS_PER_LAYER // 200
    assert len(geometry.validate_lesions([lesion(ring)] * count, W, H)) == count
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions([lesion(ring)] * (count - 1) + [lesion(ring, [[[1, 1], [2, 1], [2, 2]]])], W, H)
    assert e.value.rule == "too_many_points"


@pytest.mark.parametrize(
    "bad, rule",
    [
        ({"label": BENIGN, "points": [[1, 1], [5, "a"], [9, 1]]}, "format"),
        ({"label": "suspicious", "points": SQUARE}, "label"),
        ({"label": BENIGN, "points": [[0, 0], [20, 20], [20, 0], [0, 20]]}, "self_intersecting"),
        ({"label": BENIGN, "points": SQUARE, "holes": [[[1, 1], [2, 2]]]}, "too_few_points"),
        ("a string", "format"),
    ],
)
def test_validate_lesions_names_the_lesion_at_fault(bad, rule):
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions([lesion(SQUARE), lesion(SQUARE), bad, lesion(SQUARE)], W, H)
    assert e.value.rule == rule and e.value.index == 2


def test_validate_lesions_refuses_a_non_list():
    with pytest.raises(ContourError) as e:
        geometry.validate_lesions({"points": SQUARE}, W, H)
    assert e.value.rule == "format" and e.value.index is None


# --- rasterising in the box -------------------------------------------------------------------


def random_lesion(rng):
    """A random polygon (crossing or not) with up to two holes, reaching the frame's edges."""
    cx, cy = rng.integers(0, W), rng.integers(0, H)
    n = int(rng.integers(3, 12))
    angle = np.sort(rng.random(n)) * 2 * np.pi
    radius = rng.integers(2, 50, n)
    outer = np.c_[cx + radius * np.cos(angle), cy + radius * np.sin(angle)]
    outer = np.clip(outer, 0, [W - 1, H - 1]).round(1).tolist()
    holes = []
    for _ in range(int(rng.integers(0, 3))):
        hx, hy, r = cx + rng.integers(-10, 11), cy + rng.integers(-10, 11), rng.integers(2, 12)
        t = np.linspace(0, 2 * np.pi, int(rng.integers(3, 9)), endpoint=False)
        holes.append(np.clip(np.c_[hx + r * np.cos(t), hy + r * np.sin(t)], 0, [W - 1, H - 1]).round(1).tolist())
    return Lesion([BENIGN, MALIGNANT][int(rng.integers(2))], outer, holes)


@pytest.mark.parametrize("seed", range(30))
def test_rasterising_in_the_box_is_pixel_identical_to_the_full_frame_method(seed):
    """Overlapping benign and malignant lesions with holes, some reaching the frame's edges."""
    rng = np.random.default_rng(500 + seed)
    lesions = [random_lesion(rng) for _ in range(int(rng.integers(1, 8)))]
    assert np.array_equal(geometry.rasterise(lesions, W, H), old_rasterise(lesions, W, H))
    for les in lesions:
        expected = old_lesion_mask(les, W, H)
        assert np.array_equal(geometry.lesion_mask(les, W, H), expected)
        assert geometry.pixel_area(les, W, H) == int(expected.sum())


# --- extraction in one trace per colour -------------------------------------------------------


def assert_same_extraction(mask):
    new, old = geometry.extract_lesions(mask), old_extract_lesions(mask)
    assert new.lesions == old.lesions  # same rings, same holes in the same order, same lesion order
    assert new.dropped_specks == old.dropped_specks and new.other_pixels == old.other_pixels


@pytest.mark.parametrize("seed", range(40))
def test_extraction_is_the_same_as_tracing_each_component_alone(seed):
    """Rings, discs, holes, islands in holes, specks and noise, touching the frame's edges."""
    rng = np.random.default_rng(600 + seed)
    mask = np.zeros((H, W, 3), np.uint8)
    for _ in range(int(rng.integers(1, 12))):
        colour = [(255, 0, 0), (0, 255, 0), (0, 0, 0)][int(rng.integers(3))]
        centre = (int(rng.integers(W)), int(rng.integers(H)))
        shape = rng.random()
        if shape < 0.4:
            axes = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
            cv2.ellipse(mask, centre, axes, float(rng.integers(180)), 0, 360, colour, -1)
        elif shape < 0.7:
            cv2.circle(mask, centre, int(rng.integers(1, 30)), colour, int(rng.integers(1, 3)))
        else:
            cv2.fillPoly(mask, [rng.integers(0, [W, H], size=(int(rng.integers(3, 9)), 2)).astype(np.int32)], colour)
    mask[rng.random((H, W)) < 0.02] = [(255, 0, 0), (0, 255, 0)][seed % 2]
    assert_same_extraction(mask)


def test_extraction_of_the_sample_is_the_same_as_tracing_each_component_alone(sample_dir):
    for path in sorted((sample_dir / "masks").glob("*.png")):
        assert_same_extraction(np.asarray(PIL.Image.open(path).convert("RGB")))


# --- COCO annotations measured in the box -----------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_coco_area_and_bbox_are_the_same_as_from_the_full_frame_mask(seed):
    from types import SimpleNamespace

    from annotator.exporting.coco import CocoFormat, rle

    rng = np.random.default_rng(700 + seed)
    lesions = [random_lesion(rng) for _ in range(6)]
    coco = CocoFormat()
    record = SimpleNamespace(name="X_001.png", width=W, height=H, components=lesions, drawn=[], assessment="")
    coco.add(None, record)
    for les, ann in zip(lesions, coco.annotations, strict=True):
        full = old_lesion_mask(les, W, H)
        ys, xs = np.nonzero(full)
        assert ann["area"] == int(full.sum())
        assert ann["bbox"] == [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
        if les.holes:
            assert ann["segmentation"] == rle(full)
