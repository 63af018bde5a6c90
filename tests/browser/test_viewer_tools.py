"""The viewer's Hole, Brush and Eraser tools in real Chromium, checked in the database.

Issue 9, part 2: a hole drawn in a lesion is stored as that lesion's hole ring; brush and eraser
strokes add to or cut from a lesion's pixels and come back as rings (with holes) that the server
validated and stored like any other. Expected pixels are computed here with the server's own
rasteriser (annotator/geometry.py); the stroke runs at actual pixels (1 screen px = 1 image px).
"""

from __future__ import annotations

import numpy as np
import pytest

from annotator import geometry
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import (
    HEIGHT,
    WIDTH,
    click_image,
    draft_of,
    drag_image,
    open_annotate,
    to_page,
)
from tests.browser.test_move_all import drawn_image
from tests.factories import PASSWORD, alice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SQUARE = [[300.0, 200.0], [420.0, 200.0], [420.0, 300.0], [300.0, 300.0]]
HOLE = [[340.0, 230.0], [380.0, 230.0], [380.0, 270.0], [340.0, 270.0]]


def lesions_of(layer) -> list[geometry.Lesion]:
    return [les.as_geometry() for les in layer.lesions.order_by("index")]


def mask_of(lesions: list[geometry.Lesion]) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for lesion in lesions:
        mask |= geometry.lesion_mask(lesion, WIDTH, HEIGHT).astype(bool)
    return mask


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def capsule(a: tuple[float, float], b: tuple[float, float], r: float) -> np.ndarray:
    """Pixels within r of the segment ab."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = np.clip(((xx - a[0]) * dx + (yy - a[1]) * dy) / (dx * dx + dy * dy), 0, 1)
    return (xx - a[0] - t * dx) ** 2 + (yy - a[1] - t * dy) ** 2 <= r * r


def set_brush_size(page, r: int) -> None:
    page.fill("#brush-size", str(r))
    page.press("#brush-size", "Enter")
    page.evaluate("document.activeElement.blur()")  # keys go to the viewer again


def test_a_polygon_drawn_with_the_hole_tool_becomes_the_selected_lesions_hole(login):
    image = drawn_image("HOLE_000.png", alice(), [geometry.Lesion(label="malignant", points=SQUARE)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)
    before = geometry.pixel_area(lesions_of(layer)[0], WIDTH, HEIGHT)

    page.keyboard.press("o")
    assert page.get_attribute("#tool-hole", "aria-pressed") == "true"
    click_image(page, 600, 500)  # no lesion there: nothing to cut a hole in
    assert "lesion the hole belongs to" in page.text_content("#viewer-message")
    click_image(page, 310, 210)  # the first click picks the lesion
    assert page.evaluate("window.busViewer.selected") == 0

    # A hole reaching outside the lesion is refused; nothing changes.
    for x, y in [(400, 250), (480, 250), (440, 280)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    assert "inside the selected lesion" in page.text_content("#viewer-message")
    assert page.evaluate("window.busViewer.lesions[0].holes.length") == 0

    for x, y in HOLE:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    wait_until(lambda: layer.lesions.get().holes != [], what="the hole to be stored")
    [stored] = lesions_of(layer)
    assert stored.label == "malignant" and stored.points == SQUARE
    assert [[[round(x), round(y)] for x, y in ring] for ring in stored.holes] == [HOLE]
    after = geometry.pixel_area(stored, WIDTH, HEIGHT)
    assert after == before - 39 * 39  # the hole's inside is cleared, its ring stays painted
    # The lesion list counts the pixels the export will have: the hole included.
    assert f"{after:,} px" in page.text_content("#lesion-list li")

    page.keyboard.press("Control+z")
    wait_until(lambda: layer.lesions.get().holes == [], what="the undone hole")
    assert page.js_errors == []


def test_brush_and_eraser_strokes_edit_the_lesion_pixels_and_store_valid_rings(login):
    image = drawn_image("BRSH_000.png", alice(), [geometry.Lesion(label="benign", points=SQUARE)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)
    original = mask_of(lesions_of(layer))
    page.keyboard.press("1")  # actual pixels

    # Brush, radius 10: a stroke from inside the square out to the right.
    page.click("#lesion-list li >> nth=0")
    page.keyboard.press("d")
    set_brush_size(page, 10)
    assert page.evaluate("window.busViewer.brushRadius") == 10
    drag_image(page, (400, 250), (470, 250), steps=10)
    wait_until(lambda: layer.lesions.get().points != SQUARE, what="the brushed lesion")
    [brushed] = lesions_of(layer)
    grown = mask_of([brushed])
    assert (grown & original).sum() == original.sum()  # nothing of the lesion lost
    assert grown[disc(465, 250, 8)].all()  # the stroke's end painted
    assert not (grown & ~original & ~capsule((400, 250), (470, 250), 11.5)).any()  # nothing beyond the stroke
    assert geometry.find_crossing(brushed.points) is None and brushed.label == "benign"

    # ] enlarges the brush; the eraser pressed in the middle cuts a hole.
    page.keyboard.press("x")
    page.keyboard.press("]")
    assert page.evaluate("window.busViewer.brushRadius") == 13  # a quarter more
    click_image(page, 350, 250)
    wait_until(lambda: layer.lesions.get().holes != [], what="the erased hole")
    [erased] = lesions_of(layer)
    cut = mask_of([erased])
    assert not cut[disc(350, 250, 11)].any()
    assert cut[disc(350, 250, 16) & ~disc(350, 250, 15) & original].all()  # the ring round the hole stays
    assert len(erased.holes) == 1

    # A stroke right across splits the lesion in two, both stored, both benign.
    set_brush_size(page, 6)
    drag_image(page, (390, 180), (390, 320), steps=14)
    wait_until(lambda: layer.lesions.count() == 2, what="the split lesion")
    pieces = lesions_of(layer)
    assert [p.label for p in pieces] == ["benign", "benign"]
    split = mask_of(pieces)
    assert not split[disc(390, 250, 4)].any() and not split[disc(390, 205, 4)].any()
    assert "2 separate lesions" in page.text_content("#viewer-message")
    assert page.js_errors == []


def test_a_brush_stroke_with_nothing_selected_paints_a_new_lesion_in_the_next_label(login):
    image = drawn_image("BRSH_001.png", alice(), [geometry.Lesion(label="benign", points=SQUARE)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)
    page.keyboard.press("1")
    page.keyboard.press("m")
    page.keyboard.press("d")
    drag_image(page, (600, 420), (640, 440), steps=8)
    wait_until(lambda: layer.lesions.count() == 2, what="the painted lesion")
    first, new = lesions_of(layer)
    assert first.points == SQUARE and new.label == "malignant"
    painted = mask_of([new])
    assert painted[disc(600, 420, 6)].all() and painted[disc(640, 440, 6)].all()
    assert abs(int(painted.sum()) - (np.pi * 8 * 8 + 2 * 8 * np.hypot(40, 20))) < 60
    assert page.js_errors == []


def test_the_browser_tracer_gives_back_the_server_mask_on_random_masks(login):
    """trace.js on random masks: every lesion validates on the server, and the rings paint the
    same pixels as the server's own extraction of that mask (specks too thin dropped by both)."""
    image = drawn_image("TRCE_000.png", alice(), [], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    rng = np.random.default_rng(9)
    w, h = 60, 45
    masks = []
    for k in range(120):
        mask = np.zeros((h, w), dtype=bool)
        for _ in range(1 + k % 4):  # overlapping discs toggled: holes, necks, islands in holes
            mask ^= disc_in(w, h, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, 14))
        if k % 2:
            mask ^= rng.random((h, w)) < 0.02  # specks, pinholes and one-pixel bridges
        masks.append(mask)
    traced = page.evaluate(
        """async ([masks, w, h]) => {
            const src = document.querySelector('script[type=module][src*="annotate"]').src;
            const { traceMask } = await import(new URL("trace.js", src).href);
            return masks.map((m) => traceMask({ x0: 3, y0: 5, w, h, data: Uint8Array.from(m.flat()) }));
        }""",
        [[m.astype(int).tolist() for m in masks], w, h],
    )
    for mask, result in zip(masks, traced, strict=True):
        lesions = [
            geometry.validate_lesion({"label": "benign", **les}, w + 3, h + 5, index=i)
            for i, les in enumerate(result["lesions"])
        ]
        rgb = np.zeros((h + 5, w + 3, 3), dtype=np.uint8)
        rgb[5:, 3:][mask] = geometry.COLOURS["benign"]
        server = geometry.extract_lesions(rgb)
        assert len(lesions) == len(server.lesions) and result["dropped"] == len(server.dropped_specks)
        ours = geometry.rasterise(lesions, w + 3, h + 5)
        assert (ours == geometry.rasterise(server.lesions, w + 3, h + 5)).all()
        # Without specks the round trip is exact: the traced rings paint the mask itself.
        if not server.dropped_specks:
            assert (ours[5:, 3:, 1] > 0).tolist() == mask.tolist()


def disc_in(w: int, h: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_an_overlap_of_different_labels_is_flagged_and_b_or_m_after_closing_labels_the_next_lesion(login):
    image = drawn_image("OVLP_000.png", alice(), [geometry.Lesion(label="benign", points=SQUARE)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)
    assert not page.is_visible("#overlap-text")

    # A malignant triangle drawn over the benign square: stored, with a banner (not a block).
    page.keyboard.press("m")
    triangle = [(400, 280), (480, 280), (440, 340)]
    for x, y in triangle:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    wait_until(lambda: layer.lesions.count() == 2, what="the overlapping lesion")
    page.wait_for_selector("#overlap-text", state="visible")
    text = page.text_content("#overlap-text")
    assert "lesion 2 (malignant) overlaps lesion 1 (benign)" in text.lower()

    # `b` right after closing is the next lesion's label: the new one stays malignant.
    page.keyboard.press("b")
    assert "next lesion" in page.text_content("#viewer-message")
    assert page.get_attribute("#label-benign", "aria-pressed") == "true"
    page.wait_for_function("() => window.busPage.state === 'saved'")
    assert [les.label for les in layer.lesions.order_by("index")] == ["benign", "malignant"]
    for x, y in [(600, 100), (660, 100), (630, 150)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    wait_until(lambda: layer.lesions.count() == 3, what="the third lesion")
    assert [les.label for les in layer.lesions.order_by("index")] == ["benign", "malignant", "benign"]

    # Picked from the list, the lesion takes the label; the same labels no longer warn.
    page.click("#lesion-list li >> nth=1")
    page.keyboard.press("b")
    wait_until(
        lambda: [les.label for les in layer.lesions.order_by("index")] == ["benign", "benign", "benign"],
        what="the relabelled lesion",
    )
    assert not page.is_visible("#overlap-text")
    page.keyboard.press("Control+z")
    page.wait_for_selector("#overlap-text", state="visible")
    assert page.js_errors == []


def lesion_alpha(page, x: float, y: float) -> int:
    """Alpha of the lesion layer's canvas at image pixel (x, y), after the next frame is drawn."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return page.evaluate(
        """([x, y]) => {
            const v = window.busViewer;
            const c = v.lesionLayer.getNativeCanvasElement();
            const k = c.width / v.stage.width();
            const px = Math.round((v.stage.x() + x * v.scale) * k);
            const py = Math.round((v.stage.y() + y * v.scale) * k);
            return c.getContext("2d").getImageData(px, py, 1, 1).data[3];
        }""",
        [x, y],
    )


def test_outline_only_invert_loupe_and_saved_window_presets(login, artifacts):
    image = drawn_image("DISP_000.png", alice(), [geometry.Lesion(label="benign", points=SQUARE)], submit=False)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    layer = draft_of(image)

    # Outline only: the fill goes, the outline stays, and a click inside still picks the lesion.
    assert lesion_alpha(page, 360, 250) > 0
    page.keyboard.press("u")
    assert page.get_attribute("#toggle-outline", "aria-pressed") == "true"
    assert lesion_alpha(page, 360, 250) == 0
    assert lesion_alpha(page, 300, 250) > 0
    page.keyboard.press("e")
    click_image(page, 360, 250)
    assert page.evaluate("window.busViewer.selected") == 0
    page.click("#toggle-outline")
    assert lesion_alpha(page, 360, 250) > 0

    # Invert: a filter on the image canvas only; the drawing is unchanged.
    page.keyboard.press("i")
    image_filter = "window.busViewer.imageLayer.getNativeCanvasElement().style.filter"
    assert "invert(1)" in page.evaluate(image_filter)
    page.keyboard.press("i")
    assert "invert" not in page.evaluate(image_filter)

    # The loupe shows beside the pointer while drawing, never under it, and not off the image.
    page.keyboard.press("z")
    page.keyboard.press("p")
    page.mouse.move(*to_page(page, 500, 400))
    page.wait_for_selector("canvas.loupe", state="visible")
    box = page.locator("canvas.loupe").bounding_box()
    px, py = to_page(page, 500, 400)
    assert not (box["x"] <= px <= box["x"] + box["width"] and box["y"] <= py <= box["y"] + box["height"])
    assert page.evaluate(
        """() => {
            const c = document.querySelector("canvas.loupe");
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let lit = 0;
            for (let k = 0; k < d.length; k += 4) lit += d[k] + d[k + 1] + d[k + 2] > 30;
            return lit > d.length / 8;  // the image's pixels, not an empty black square
        }"""
    )
    page.screenshot(path=str(artifacts / "loupe.png"))
    # Clicks go through to the image: a triangle drawn with the loupe on is stored.
    for x, y in [(500, 400), (560, 400), (530, 450)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    wait_until(lambda: layer.lesions.count() == 2, what="the triangle drawn under the loupe")
    page.mouse.move(5, 5)
    page.wait_for_selector("canvas.loupe", state="hidden")

    # A window preset saved by this reader, chosen again after a reload.
    page.evaluate(
        """() => {
            for (const [id, v] of [["brightness", 140], ["contrast", 170]]) {
                const s = document.getElementById(id);
                s.value = v;
                s.dispatchEvent(new Event("input"));
            }
        }"""
    )
    page.once("dialog", lambda d: d.accept("Cysts"))
    page.click("#preset-save")
    assert page.evaluate("JSON.parse(localStorage.getItem('busreview:window-presets:alice'))") == [
        {"name": "Cysts", "brightness": 140, "contrast": 170}
    ]
    page.wait_for_function("() => window.busPage.state === 'saved'")
    page.reload()
    page.wait_for_function("() => window.busPage && window.busPage.ready && window.busViewer.imageLoaded")
    assert "brightness(140%)" not in (page.evaluate(image_filter) or "")
    page.select_option("#window-preset", "mine:Cysts")
    assert page.input_value("#brightness") == "140" and page.input_value("#contrast") == "170"
    assert "brightness(140%) contrast(170%)" in page.evaluate(image_filter)
    page.select_option("#window-preset", "built-in:Default")
    assert "brightness(100%) contrast(100%)" in page.evaluate(image_filter)
    assert page.js_errors == []
