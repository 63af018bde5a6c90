"""annotator.measurements: areas as the export counts them, diameters against hand-computed shapes."""

import math

import numpy as np
import pytest

from annotator import geometry, measurements
from annotator.measurements import Spacing


def circle(cx, cy, r, n=720):
    return [[cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)] for k in range(n)]


def test_a_circles_diameters_are_its_diameter_within_one_pixel():
    lesion = geometry.Lesion("benign", circle(100, 80, 40))
    m = measurements.measure_lesion(lesion, 200, 160, None)
    assert m.unit == "px"
    assert abs(m.longest - 80) <= 1
    assert abs(m.perpendicular - 80) <= 1
    assert m.area_mm2 is None
    assert m.area_px == geometry.pixel_area(lesion, 200, 160)
    # The area of the painted disc is close to pi r^2 (plus the half-pixel rim the contour's pixels add).
    assert abs(m.area_px - math.pi * 40.5**2) < 0.02 * math.pi * 40**2


def test_a_rectangles_longest_diameter_is_its_diagonal_and_the_perpendicular_spans_its_long_sides():
    """20 x 10 px (vertex to vertex): diagonal sqrt(500); a line at a right angle to it crosses the
    two long sides: its span is h * d / w = 10 * sqrt(500) / 20."""
    rect = [[10, 10], [30, 10], [30, 20], [10, 20]]
    m = measurements.measure(rect, area_px=231, spacing=None)
    assert m.longest == pytest.approx(math.sqrt(500))
    assert m.perpendicular == pytest.approx(10 * math.sqrt(500) / 20)
    ends = sorted(map(tuple, m.longest_ends))
    assert ends in ([(10, 10), (30, 20)], [(10, 20), (30, 10)])
    (x0, y0), (x1, y1) = m.perpendicular_ends
    assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(m.perpendicular)
    # The callipers sit on the contour: both ends on the rectangle's border.
    for x, y in m.perpendicular_ends:
        assert 10 - 1e-9 <= x <= 30 + 1e-9 and 10 - 1e-9 <= y <= 20 + 1e-9
        assert min(abs(x - 10), abs(x - 30), abs(y - 10), abs(y - 20)) < 1e-9


def test_a_squares_perpendicular_diameter_is_its_other_diagonal():
    m = measurements.measure([[0, 0], [10, 0], [10, 10], [0, 10]], area_px=121, spacing=None)
    assert m.longest == pytest.approx(10 * math.sqrt(2))
    assert m.perpendicular == pytest.approx(10 * math.sqrt(2))


def test_the_area_matches_the_rasterised_pixel_count():
    lesion = geometry.Lesion("malignant", [[10, 10], [30, 10], [30, 20], [10, 20]])
    m = measurements.measure_lesion(lesion, 64, 48, Spacing(0.1, 0.1))
    assert m.area_px == 21 * 11 == geometry.pixel_area(lesion, 64, 48)
    mask = geometry.rasterise([lesion], 64, 48).any(axis=-1)
    assert m.area_px == int(mask.sum())
    assert m.area_mm2 == pytest.approx(231 * 0.01)


def test_anisotropic_spacing_is_measured_in_physical_coordinates():
    """A 40 x 20 px rectangle at 0.1 mm/px in x and 0.2 mm/px in y is a 4 x 4 mm square: its
    longest diameter is the physical diagonal 4 sqrt(2) mm (not the pixel diagonal scaled by any
    one spacing), the perpendicular the other diagonal; the area uses X times Y."""
    rect = [[0, 0], [40, 0], [40, 20], [0, 20]]
    m = measurements.measure(rect, area_px=41 * 21, spacing=Spacing(0.1, 0.2))
    assert m.unit == "mm"
    assert m.longest == pytest.approx(4 * math.sqrt(2))
    assert m.perpendicular == pytest.approx(4 * math.sqrt(2))
    assert m.area_mm2 == pytest.approx(41 * 21 * 0.1 * 0.2)
    # In pixels the same outline is a 2:1 rectangle whose perpendicular span is much shorter.
    px = measurements.measure(rect, area_px=41 * 21, spacing=None)
    assert px.longest == pytest.approx(math.sqrt(40**2 + 20**2))
    assert px.perpendicular == pytest.approx(20 * math.sqrt(2000) / 40)


def test_an_ellipse_stretched_by_its_spacing_measures_its_physical_axes():
    """An ellipse of semi-axes 50 x 25 px with spacing 0.1 x 0.4 mm is 10 x 20 mm: longest 20 mm (vertical)."""
    pts = [[100 + 50 * math.cos(a), 60 + 25 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 1440, endpoint=False)]
    m = measurements.measure(pts, area_px=1, spacing=Spacing(0.1, 0.4))
    assert m.longest == pytest.approx(20, abs=0.01)
    assert m.perpendicular == pytest.approx(10, abs=0.01)
    (x0, y0), (x1, y1) = m.longest_ends
    assert abs(x1 - x0) < 1  # vertical in the image


def test_a_concave_outline_spans_from_its_first_to_its_last_crossing():
    """A U: long axis along the base, 30 px; the perpendicular span is the arm height, 20 px."""
    u = [[0, 0], [30, 0], [30, 20], [25, 20], [25, 5], [5, 5], [5, 20], [0, 20]]
    m = measurements.measure(u, area_px=1, spacing=None)
    assert m.longest == pytest.approx(math.hypot(30, 20))
    assert m.perpendicular > 0
    # Every perpendicular span is at most the projection of the outline on the perpendicular.
    (ax, ay), (bx, by) = m.longest_ends
    v = np.array([-(by - ay), bx - ax]) / m.longest
    proj = np.asarray(u, dtype=float) @ v
    assert m.perpendicular <= proj.max() - proj.min() + 1e-9


def test_spacing_of_prefers_x_and_y_and_falls_back_to_the_single_figure():
    assert measurements.spacing_of(0.1, 0.2, 0.14) == Spacing(0.1, 0.2)
    assert measurements.spacing_of(None, None, 0.14) == Spacing(0.14, 0.14)
    assert measurements.spacing_of(None, None, None) is None
