"""annotator.smart_contour: proposals are valid rings in the box, follow lesions, and beat the ellipse."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from annotator import contour_net, demo, geometry, smart_contour
from annotator.smart_contour import ProposalError

W, H = demo.WIDTH, demo.HEIGHT
DP = replace(smart_contour.DEFAULT, learned=False)  # the radial programme alone (the fallback)


def demo_case(seed: int, label: str = geometry.BENIGN) -> tuple[np.ndarray, geometry.Lesion]:
    png, lesions = demo.generate(seed, [label])
    return smart_contour.decode_gray(png), lesions[0]


def loose_box(lesion: geometry.Lesion, margins=(15, 15, 15, 15), width: int = W, height: int = H) -> list[int]:
    x, y, w, h = geometry.bbox(lesion)
    left, top, right, bottom = margins
    return [max(0, x - left), max(0, y - top), min(width - 1, x + w - 1 + right), min(height - 1, y + h - 1 + bottom)]


def ring_dice(ring, lesion: geometry.Lesion, width: int = W, height: int = H) -> float:
    proposal = geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, ring), width, height)
    return geometry.dice(proposal, geometry.lesion_mask(lesion, width, height))


@pytest.mark.parametrize("seed, label", [(1, geometry.BENIGN), (2, geometry.MALIGNANT), (7, geometry.BENIGN)])
def test_proposal_is_a_valid_ring_inside_the_box(seed, label):
    gray, lesion = demo_case(seed, label)
    box = loose_box(lesion)
    ring = smart_contour.propose(gray, box=box)
    assert geometry.validate_ring(ring, W, H)  # >= 3 points, in the image, no self-crossing
    x0, y0, x1, y1 = box
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in ring)
    assert 8 <= len(ring) <= 150  # editable: simplified, not one point per pixel


@pytest.mark.parametrize("seed", range(1, 7))
def test_proposal_follows_a_synthetic_lesion_better_than_the_ellipse(seed):
    gray, lesion = demo_case(seed, geometry.BENIGN if seed % 2 else geometry.MALIGNANT)
    box = loose_box(lesion, margins=(12, 18, 20, 10))
    ours = ring_dice(smart_contour.propose(gray, box=box), lesion)
    ellipse = ring_dice(smart_contour.ellipse_in_box(smart_contour.check_box(box, W, H)), lesion)
    assert ours >= 0.85
    assert ours > ellipse + 0.05


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_click_inside_a_lesion_proposes_its_outline(seed):
    gray, lesion = demo_case(seed, geometry.BENIGN if seed % 2 else geometry.MALIGNANT)
    mask = geometry.lesion_mask(lesion, W, H)
    depth = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)  # the middle of the lesion
    ring = smart_contour.propose(gray, point=[float(x), float(y)])
    assert geometry.validate_ring(ring, W, H)
    assert cv2.pointPolygonTest(np.float32(ring), (float(x), float(y)), False) >= 0
    assert ring_dice(ring, lesion) >= 0.75


def test_a_box_is_used_when_both_box_and_point_are_given():
    gray, lesion = demo_case(3)
    box = loose_box(lesion)
    assert smart_contour.propose(gray, box=box, point=[5, 5]) == smart_contour.propose(gray, box=box)


@pytest.mark.parametrize(
    "box",
    [
        None,
        [10, 10, 60],
        [10, 10, 60, 50, 70],
        "10,10,60,50",
        [10, 10, 60, float("nan")],
        [10, 10, float("inf"), 50],
        [True, 10, 60, 50],
        [10, 10, "60", 50],
        [10, 10, 12, 12],  # too small
        [900, 700, 1000, 800],  # outside the image: nothing left after clipping
        [-50, -50, -10, -10],
    ],
)
def test_bad_box_is_a_proposal_error(box):
    gray, _ = demo_case(1)
    with pytest.raises(ProposalError):
        smart_contour.propose(gray, box=box) if box is not None else smart_contour.propose(gray)


@pytest.mark.parametrize(
    "point", [[-1, 10], [10, H], [W, 10], [float("nan"), 3], [1, 2, 3], [1], ["1", "2"], [False, 2]]
)
def test_bad_point_is_a_proposal_error(point):
    gray, _ = demo_case(1)
    with pytest.raises(ProposalError):
        smart_contour.propose(gray, point=point)


def test_a_box_upside_down_or_past_the_edge_is_normalised():
    gray, lesion = demo_case(5)
    x0, y0, x1, y1 = loose_box(lesion)
    assert smart_contour.propose(gray, box=[x1, y1, x0, y0]) == smart_contour.propose(gray, box=[x0, y0, x1, y1])
    ring = smart_contour.propose(gray, box=[-40, -40, 120, 90])
    assert geometry.validate_ring(ring, W, H)
    assert all(0 <= x <= 120 and 0 <= y <= 90 for x, y in ring)


def test_a_featureless_image_falls_back_to_the_ellipse():
    flat = np.full((64, 96), 128, np.uint8)
    box = (10, 10, 60, 50)
    assert smart_contour.propose(flat, box=list(box)) == smart_contour.ellipse_in_box(box)
    assert geometry.validate_ring(smart_contour.propose(flat, point=[40, 30]), 96, 64)


def test_a_tiny_image_and_a_box_on_its_border_give_valid_rings():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (40, 30), dtype=np.uint8)
    for box in ([0, 0, 29, 39], [0, 30, 10, 39], [22, 0, 29, 8]):
        assert geometry.validate_ring(smart_contour.propose(noise, box=box), 30, 40)
    assert geometry.validate_ring(smart_contour.propose(noise, point=[0, 0]), 30, 40)


def test_undecodable_bytes_are_a_proposal_error():
    with pytest.raises(ProposalError):
        smart_contour.decode_gray(b"not a png")


def test_closed_path_follows_a_valley_and_closes():
    n_ang, n_rad = 40, 30
    cost = np.random.default_rng(1).random((n_ang, n_rad))
    valley = (12 + 6 * np.sin(np.linspace(0, 2 * np.pi, n_ang, endpoint=False))).round().astype(int)
    cost[np.arange(n_ang), valley] = -10
    path = smart_contour._closed_path(cost, max_step=2, step_cost=0.1)
    assert path.tolist() == valley.tolist()
    assert abs(int(path[0]) - int(path[-1])) <= 2 and np.all(np.abs(np.diff(path)) <= 2)


def sample_images(sample_dir: Path):
    """(file name, grey image, its reference lesions) for each image of the shared sample with lesions."""
    for mask_path in sorted((sample_dir / "masks").glob("*.png")):
        lesions = geometry.extract_lesions(cv2.imread(str(mask_path))[:, :, ::-1]).lesions
        if lesions:
            gray = smart_contour.decode_gray((sample_dir / "images" / mask_path.name).read_bytes())
            yield mask_path.name, gray, lesions


def test_on_real_images_the_proposal_beats_the_ellipse(sample_dir: Path):
    """On the BUS-UCLM sample, with loose boxes (10-20 px per side, fixed seed), the median Dice
    of the proposal is clearly above the inscribed ellipse's (bench/smart_contour_dice.py has
    the full figures)."""
    rng = np.random.default_rng(0)
    ours, ellipse = [], []
    for _name, gray, lesions in sample_images(sample_dir):
        height, width = gray.shape
        for lesion in lesions:
            for _ in range(3):
                margins = [int(v) for v in rng.integers(10, 21, size=4)]
                box = loose_box(lesion, margins, width, height)
                ring = smart_contour.propose(gray, box=box)
                geometry.validate_ring(ring, width, height)
                ours.append(ring_dice(ring, lesion, width, height))
                baseline = smart_contour.ellipse_in_box(smart_contour.check_box(box, width, height))
                ellipse.append(ring_dice(baseline, lesion, width, height))
    assert len(ours) >= 30
    assert np.median(ours) > np.median(ellipse) + 0.05
    assert np.median(ours) >= 0.88


# --- corrections: inside and outside points ------------------------------------------------------


def contains(ring, point) -> bool:
    return cv2.pointPolygonTest(np.float32(ring), (float(point[0]), float(point[1])), False) > 0


def test_an_outside_point_cuts_its_part_of_the_proposal_and_keeps_the_rest():
    gray, lesion = demo_case(3)
    box = loose_box(lesion)
    before = smart_contour.propose(gray, box=box)
    x, y, w, h = geometry.bbox(lesion)
    point = [x + 0.85 * w, y + h / 2]  # inside the lesion, near its right edge
    assert contains(before, point)
    after = smart_contour.propose(gray, box=box, outside=[point])
    assert geometry.validate_ring(after, W, H)
    assert not contains(after, point)
    assert ring_dice(after, lesion) > 0.6  # the rest of the outline still follows the lesion
    assert ring_dice(after, lesion) < ring_dice(before, lesion)


def test_an_inside_point_past_a_too_tight_box_grows_the_outline_to_it():
    gray, lesion = demo_case(1)
    x, y, w, h = geometry.bbox(lesion)
    tight = [x - 10, y - 10, x + w // 2, y + h + 10]  # the reader's box missed the right half
    before = smart_contour.propose(gray, box=tight)
    point = [x + 0.85 * w, y + h / 2]
    assert not contains(before, point)
    after = smart_contour.propose(gray, box=tight, inside=[point])
    assert contains(after, point)
    assert ring_dice(after, lesion) > ring_dice(before, lesion) + 0.1


def test_where_points_contradict_the_outside_one_wins():
    gray, lesion = demo_case(3)
    box = loose_box(lesion)
    x, y, w, h = geometry.bbox(lesion)
    point = [x + 0.85 * w, y + h / 2]
    ring = smart_contour.propose(gray, box=box, outside=[point], inside=[[point[0] + 1, point[1]]])
    # inside points are applied before outside ones: here the outside one is the later word
    assert not contains(ring, point)


def test_corrections_refine_a_click_proposal_too():
    gray, lesion = demo_case(2, geometry.MALIGNANT)
    mask = geometry.lesion_mask(lesion, W, H)
    depth = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    before = smart_contour.propose(gray, point=[float(x), float(y)])
    ys, xs = np.nonzero(geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, before), W, H))
    far = [float(xs.max() - 3), float(y)]  # inside the proposal, at its right edge
    after = smart_contour.propose(gray, point=[float(x), float(y)], outside=[far])
    assert contains(after, (x, y)) and not contains(after, far)


def test_no_corrections_change_nothing():
    gray, lesion = demo_case(4)
    box = loose_box(lesion)
    assert smart_contour.propose(gray, box=box, inside=[], outside=[]) == smart_contour.propose(gray, box=box)


@pytest.mark.parametrize(
    "inside, outside",
    [
        ("10,10", []),
        ([[10]], []),
        ([[10, 10, 10]], []),
        ([], [[10, float("nan")]]),
        ([], [[10, True]]),
        ([[-1, 10]], []),
        ([], [[10, H]]),
        ([[10, 10]] * (smart_contour.MAX_CORRECTIONS + 1), []),
    ],
)
def test_bad_corrections_are_a_proposal_error(inside, outside):
    gray, lesion = demo_case(3)
    with pytest.raises(ProposalError):
        smart_contour.propose(gray, box=loose_box(lesion), inside=inside, outside=outside)


def test_a_lesion_with_a_dark_core_in_a_paler_rim_is_proposed_whole():
    # The commonest failure on real images: the first pass finds only the dark core of a large
    # heterogeneous lesion; the box prior (the core stretched to the box) recovers the whole.
    rng = np.random.default_rng(0)
    height, width = 400, 600
    img = np.full((height, width), 150, np.float32)
    cv2.ellipse(img, (300, 200), (160, 110), 20, 0, 360, 95, -1)  # the lesion, moderately dark
    cv2.ellipse(img, (300, 200), (70, 50), 20, 0, 360, 35, -1)  # its dark core
    gray = np.clip(img * rng.gamma(4, 1 / 4, img.shape), 0, 255).astype(np.uint8)  # speckle
    truth = np.zeros((height, width), np.uint8)
    cv2.ellipse(truth, (300, 200), (160, 110), 20, 0, 360, 1, -1)
    ys, xs = np.nonzero(truth)
    box = [int(xs.min()) - 15, int(ys.min()) - 15, int(xs.max()) + 15, int(ys.max()) + 15]

    def dice_of(ring):
        return geometry.dice(geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, ring), width, height), truth)

    assert dice_of(smart_contour.propose(gray, box=box)) >= 0.9  # the network
    assert dice_of(smart_contour.propose(gray, box=box, params=DP)) >= 0.9  # the programme, its fallback
    without_prior = replace(DP, margin_weight=0.0)
    assert dice_of(smart_contour.propose(gray, box=box, params=without_prior)) < 0.6  # the core alone


def test_a_click_keeps_the_largest_proposal_whose_boundary_is_nearly_the_clearest():
    # A heterogeneous lesion: a very dark core (r 20) inside a grey lesion (r 40) on bright tissue.
    gray = np.full((200, 200), 180, np.uint8)
    cv2.circle(gray, (100, 100), 40, 100, -1)
    cv2.circle(gray, (100, 100), 20, 10, -1)

    def circle(r: float) -> list[list[float]]:
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return [[100 + r * float(np.cos(a)), 100 + r * float(np.sin(a))] for a in t]

    core, lesion, leak = circle(20), circle(40), circle(90)
    contrast = [smart_contour._boundary_contrast(gray, ring) for ring in (core, lesion, leak)]
    assert contrast[0] > contrast[1] >= smart_contour.POINT_CONTRAST * contrast[0] and contrast[2] < contrast[1] / 2
    # the core's boundary is the clearest, but the whole lesion's is nearly as clear and larger
    assert smart_contour._pick_from_point(gray, [core, lesion, leak], (100, 100)) == 1
    # a proposal that does not contain the click is no candidate while one does
    elsewhere = [[5.0, 5.0], [30.0, 5.0], [30.0, 30.0], [5.0, 30.0]]
    assert smart_contour._pick_from_point(gray, [elsewhere, core], (100, 100)) == 1


def test_on_a_large_box_a_correction_point_holds_the_rays_within_a_tenth_of_its_half_size():
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    rho = np.linspace(0.15, 1.42, 64)
    allowed = np.ones((96, 64), bool)
    centre, axes = (300.0, 300.0), (200.0, 200.0)
    lo, hi = smart_contour._click_limits([(450.0, 300.0, False)], centre, axes, theta, rho, allowed)
    held = hi < 63
    # 20 px (a tenth of 200) round a point 150 px out: rays within asin(20 / 150) of angle 0
    assert held.sum() == np.sum(np.abs(np.angle(np.exp(1j * theta))) <= np.arcsin(20 / 150))
    assert held.sum() > 3  # a 4 px point would hold the one ray through it
    assert np.all(rho[hi[held]] < 0.75)


# --- the learned network (annotator/contour_net.py) ----------------------------------------------


def test_the_shipped_network_loads_and_opencv_reads_it_as_torch_computed_it():
    net = contour_net.load()
    assert net is not None, f"{contour_net.MODEL} is missing or unreadable"
    want = np.load(contour_net.reference_path()).astype(np.float32)
    got = net.logits(contour_net.reference_input())
    assert got.shape == (contour_net.SIZE, contour_net.SIZE)
    assert np.abs(got - want).max() < 0.05  # the reference is stored as float16


def test_a_missing_or_unreadable_weights_file_gives_no_network(tmp_path: Path):
    assert contour_net.load(tmp_path / "absent.onnx") is None
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a network")
    assert contour_net.load(junk) is None


def test_without_the_network_the_programme_answers(monkeypatch):
    gray, lesion = demo_case(3)
    box = loose_box(lesion)
    monkeypatch.setattr(contour_net, "load", lambda *a: None)
    assert smart_contour.propose(gray, box=box) == smart_contour.propose(gray, box=box, params=DP)


def test_the_network_proposes_valid_rings_in_the_box_on_real_images(sample_dir: Path):
    """Box and click proposals from the network on the shared sample: valid, simplified rings inside
    the box (or holding the click), closer to the reference than the programme's on the median."""
    rng = np.random.default_rng(3)
    net, dp = [], []
    for _name, gray, lesions in sample_images(sample_dir):
        height, width = gray.shape
        lesion = lesions[0]
        box = loose_box(lesion, [int(v) for v in rng.integers(10, 21, size=4)], width, height)
        ring = smart_contour.propose(gray, box=box)
        geometry.validate_ring(ring, width, height)
        assert 3 <= len(ring) <= 300
        x0, y0, x1, y1 = smart_contour.check_box(box, width, height)
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in ring)
        net.append(ring_dice(ring, lesion, width, height))
        dp.append(ring_dice(smart_contour.propose(gray, box=box, params=DP), lesion, width, height))
        mask = geometry.lesion_mask(lesion, width, height)
        y, x = np.unravel_index(int(np.argmax(cv2.distanceTransform(mask, cv2.DIST_L2, 5))), mask.shape)
        ring = smart_contour.propose(gray, point=[float(x), float(y)])
        geometry.validate_ring(ring, width, height)
        assert contains(ring, (x, y))
    assert len(net) >= 10
    assert np.median(net) >= 0.88 and np.median(net) >= np.median(dp) - 0.01


def test_points_the_network_ignores_are_still_kept_on_their_side():
    """Where the network's own outline does not respect a reader's point, the programme runs on its
    probabilities with the point as a bound: an outside point in the middle of a lesion is left out."""
    gray, lesion = demo_case(1)
    box = loose_box(lesion)
    x, y, w, h = geometry.bbox(lesion)
    point = [x + 0.6 * w, y + 0.5 * h]
    ring = smart_contour.propose(gray, box=box, outside=[point])
    assert geometry.validate_ring(ring, W, H)
    assert not contains(ring, point)
    assert ring_dice(ring, lesion) > 0.3


def test_a_click_on_a_small_lesion_proposes_an_outline_of_its_size(sample_dir: Path):
    """The shared sample's smallest lesions (under 15,000 px, a 512 px window leaves them a few crop
    pixels wide), clicked in the middle: the proposal is about the lesion's size, not the tissue
    round it. (The sample's patients are among the network's training patients: a behaviour check,
    not a measure; BENCHMARKS.md 14d has the held-out figures.)"""
    checked = 0
    for name, gray, lesions in sample_images(sample_dir):
        height, width = gray.shape
        for lesion in lesions:
            mask = geometry.lesion_mask(lesion, width, height)
            if mask.sum() >= 15_000:
                continue
            y, x = np.unravel_index(int(np.argmax(cv2.distanceTransform(mask, cv2.DIST_L2, 5))), mask.shape)
            ring = smart_contour.propose(gray, point=[float(x), float(y)])
            geometry.validate_ring(ring, width, height)
            proposal = geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, ring), width, height)
            assert 0.7 <= proposal.sum() / mask.sum() <= 1.4, name
            assert geometry.dice(proposal, mask) >= 0.85, name
            checked += 1
    assert checked >= 5


def test_a_clicks_box_is_refitted_round_its_outline_and_grown_where_the_outline_was_cut():
    box = (100, 100, 200, 150)  # 100 x 50
    # The outline stops short of the top, right and bottom sides and reaches the left one.
    ring = [[101, 120], [150, 110], [180, 125], [150, 140]]
    m, g = smart_contour.REFIT_MARGIN, smart_contour.REFIT_GROW
    assert smart_contour._refit_box(ring, box, 640, 480) == (100 - round(g * 100), 110 - m, 180 + m, 140 + m)
    # Past the image, the box stops at its edge.
    assert smart_contour._refit_box([[1, 20], [60, 10], [60, 40]], (0, 0, 100, 50), 640, 480)[:2] == (0, 0)


def test_a_click_where_the_network_sees_no_lesion_is_still_answered(monkeypatch):
    """No window's guess holds the click: the search round the click (boxes_from_point) answers."""
    gray, lesion = demo_case(2)
    monkeypatch.setattr(smart_contour, "_learned_part_at", lambda *a: None)
    x, y, w, h = geometry.bbox(lesion)
    point = [x + w / 2, y + h / 2]
    ring = smart_contour.propose(gray, point=point)
    assert geometry.validate_ring(ring, W, H)
    assert cv2.pointPolygonTest(np.float32(ring), (point[0], point[1]), False) >= 0
