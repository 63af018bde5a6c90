"""The annotation page as a new reader meets it: looking starts nothing, Back shows what is stored,
an unfinished polygon is never joined silently, the area shown is the exported pixel count."""

from __future__ import annotations

import math
import random

import pytest

from annotator import geometry, workflow
from annotator.models import AuditEvent, Image, MaskLayer
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import (
    POLYGON,
    click_image,
    draft_of,
    near,
    open_annotate,
    points,
    scan,
    stored,
    to_page,
)
from tests.factories import PASSWORD, alice, bob, content, image_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def started(image: Image, lesions=()) -> MaskLayer:
    """The reader's draft, as an earlier visit left it."""
    reader = image.annotator
    layer = workflow.start(image_id=image.pk, user=reader)
    if lesions:
        layer = workflow.save_draft(
            layer_id=layer.pk, user=reader, expected_version=layer.version, content=content(*lesions)
        )
    return layer


def test_looking_at_an_image_and_going_next_starts_nothing_and_the_first_edit_starts_the_draft(login):
    reader = alice()
    returned = image_in("returned", annotator=reader, reviewer=bob(), name="LOOK_000.png")
    fresh, _ = scan("LOOK_001.png", reader, seed=5)
    events = AuditEvent.objects.count()
    page = login("alice", PASSWORD)

    open_annotate(page, returned)
    assert page.text_content("#image-status").strip() == "Returned"
    assert page.evaluate("window.busViewer.lesions.length") == 1  # the returned drawing, shown
    page.wait_for_selector("#next-image[aria-disabled=false]")
    page.click("#next-image")
    page.wait_for_url(f"**/images/{fresh.pk}/annotate/")
    page.wait_for_function("() => window.busPage && window.busPage.ready")

    returned.refresh_from_db()
    assert returned.status == "returned"
    assert not MaskLayer.objects.filter(image=returned, status="draft").exists()
    fresh.refresh_from_db()
    assert fresh.status == "new" and not fresh.layers.exists()
    assert AuditEvent.objects.count() == events  # looking is not an event

    # The first edit starts the draft and the drawing is stored in it.
    page.keyboard.press("p")
    for x, y in [*POLYGON, POLYGON[0]]:
        click_image(page, x, y)
    layer = draft_of(fresh)
    wait_until(lambda: len(stored(layer)) == 1, what="the polygon to be stored")
    assert near(stored(layer)[0][1], points(*POLYGON))
    fresh.refresh_from_db()
    assert fresh.status == "draft" and layer.author == reader
    assert list(AuditEvent.objects.filter(image=fresh).values_list("action", flat=True).order_by("id"))[:1] == ["start"]
    page.wait_for_function("() => document.getElementById('image-status').textContent.trim() === 'Draft'")
    assert page.js_errors == []


def test_the_next_image_prefetch_asks_for_json_and_gets_json(login):
    reader = alice()
    first, _ = scan("PREF_000.png", reader, seed=2)
    second, _ = scan("PREF_001.png", reader, seed=3)
    page = login("alice", PASSWORD)
    with page.expect_request(lambda r: r.url.endswith(f"/api/images/{second.pk}/")) as prefetch:
        open_annotate(page, first)
    request = prefetch.value
    assert request.headers["accept"] == "application/json"
    response = request.response()
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["id"] == second.pk
    etag = response.headers["etag"]

    # The next page's own request revalidates the prefetched copy: 304, nothing sent again.
    page.wait_for_selector("#next-image[aria-disabled=false]")
    with page.expect_response(lambda r: r.url.endswith(f"/api/images/{second.pk}/")) as real:
        page.click("#next-image")
    assert real.value.request.all_headers().get("if-none-match") == etag, real.value.request.all_headers()
    page.wait_for_function("() => window.busPage && window.busPage.ready")
    assert page.evaluate("window.busPage.image.id") == second.pk
    assert page.js_errors == []


def test_back_after_submit_shows_the_submitted_image_read_only(login):
    reader = alice()
    image, _ = scan("BACK_000.png", reader, seed=6)
    scan("BACK_001.png", reader, seed=8)
    layer = started(image, [("benign", [[100, 100], [200, 100], [150, 180]])])
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    page.wait_for_selector("#next-image[aria-disabled=false]")
    page.click("#submit")
    page.wait_for_url(lambda url: f"/images/{image.pk}/" not in url)
    layer = MaskLayer.objects.get(pk=layer.pk)
    assert layer.status == "submitted"

    page.go_back()
    page.wait_for_url(f"**/images/{image.pk}/annotate/")
    page.wait_for_function("() => window.busPage && window.busPage.ready")
    assert page.text_content("#image-status").strip() == "Submitted"
    assert "readonly" in page.get_attribute("#app", "class")
    assert page.is_disabled("#submit")
    # Clicks draw nothing and nothing is saved.
    page.keyboard.press("p")
    for x, y in [(300, 300), (400, 300), (350, 380), (300, 300)]:
        click_image(page, x, y)
    assert page.evaluate("window.busViewer.lesions.length") == 1
    page.wait_for_timeout(1200)  # longer than the autosave delay: a save would have been sent
    after = MaskLayer.objects.get(pk=layer.pk)
    assert after.status == "submitted" and after.version == layer.version and after.lesions.count() == 1
    assert page.js_errors == []


def test_the_conflict_banner_promises_the_dashed_overlay_only_when_it_draws_it(login):
    reader = alice()
    image, _ = scan("BANR_000.png", reader, lesions=(), seed=4)
    layer = started(image)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    # Another tab saves first: the server's version is drawn dashed, and the banner says so.
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=reader,
        expected_version=layer.version,
        content=content(("malignant", [[500, 300], [560, 300], [530, 350]])),
    )
    page.keyboard.press("p")
    for x, y in [(100, 100), (200, 100), (150, 180)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.busPage.state === 'conflict'")
    text = " ".join(page.text_content("#conflict").split())
    assert "The server's version is shown dashed" in text
    assert page.evaluate("window.busViewer.overlayVisible && window.busViewer.overlay.length") == 1
    assert page.evaluate("window.busViewer.overlayLayer.getChildren().length") > 0
    page.click("#conflict-reload")
    page.wait_for_function("() => window.busPage.state === 'saved'")

    # Another tab submits: there is no draft to draw, and the banner promises none.
    workflow.submit(layer_id=layer.pk, user=reader)
    for x, y in [(100, 400), (200, 400), (150, 480)]:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.busPage.state === 'conflict'")
    text = " ".join(page.text_content("#conflict").split())
    assert "dashed" not in text
    assert "Your drawing is kept in this browser." in text
    banner = page.text_content("#conflict-text").strip()
    assert banner[0].isupper() and banner.endswith("kept in this browser.")
    assert ". Your drawing" in banner  # two sentences, each ended
    assert page.js_errors == []


def test_enter_with_fewer_than_three_points_drops_the_outline_and_says_so(login):
    reader = alice()
    image, _ = scan("ENTR_000.png", reader, lesions=(), seed=4)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    page.keyboard.press("p")
    click_image(page, 100, 100)
    click_image(page, 200, 100)
    page.keyboard.press("Enter")
    assert "at least 3 points" in page.text_content("#viewer-message")
    assert "dropped" in page.text_content("#viewer-message")
    assert page.evaluate("window.busViewer._draft") is None
    # A double-click with two points does the same.
    click_image(page, 300, 300)
    page.mouse.dblclick(*to_page(page, 380, 300))
    assert page.evaluate("window.busViewer._draft") is None
    assert "at least 3 points" in page.text_content("#viewer-message")

    # The next clicks start a new outline: the triangle alone is stored.
    triangle = [(400, 200), (500, 200), (450, 290)]
    for x, y in triangle:
        click_image(page, x, y)
    page.keyboard.press("Enter")
    layer = draft_of(image)
    wait_until(lambda: len(stored(layer)) == 1, what="the triangle to be stored")
    assert near(stored(layer)[0][1], points(*triangle))
    assert page.evaluate("window.busViewer.lesions.length") == 1
    assert page.js_errors == []


def area_shown(page, index: int) -> int:
    text = page.text_content(f"#lesion-list li >> nth={index} >> .lesion-area")
    return int(text.split(" px")[0].replace(",", ""))


def test_the_lesion_list_shows_the_pixel_count_the_export_will_have(login):
    reader = alice()
    image, _ = scan("AREA_000.png", reader, lesions=(), seed=4)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    page.keyboard.press("p")
    for x, y in [*POLYGON, POLYGON[0]]:
        click_image(page, x, y)
    page.keyboard.press("f")
    page.mouse.move(*to_page(page, 600, 150))
    page.mouse.down()
    for k in range(1, 40):
        a = 2 * math.pi * k / 40
        page.mouse.move(*to_page(page, 650 + 50 * math.cos(a + math.pi) + 9 * math.sin(3 * a), 150 + 60 * math.sin(a)))
    page.mouse.up()
    layer = draft_of(image)
    wait_until(lambda: len(stored(layer)) == 2, what="both lesions to be stored")
    page.wait_for_function("() => window.busPage.state === 'saved'")
    lesions = layer.lesions.order_by("index")
    assert page.locator("#lesion-list li").count() == 2
    for i, lesion in enumerate(lesions):
        shape = geometry.Lesion(label=lesion.label, points=lesion.points, holes=lesion.holes)
        expected = geometry.pixel_area(shape, image.width, image.height)
        polygon_area = abs(geometry_polygon_area(lesion.points))
        assert round(polygon_area) != expected  # the two figures differ: the test can tell them apart
        assert area_shown(page, i) == expected
    assert page.js_errors == []


def geometry_polygon_area(ring) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2


def random_shape(rng: random.Random, width: int, height: int) -> dict:
    cx, cy = rng.uniform(20, width - 20), rng.uniform(20, height - 20)
    r = rng.uniform(2, 60)
    n = rng.randint(3, 14)
    angles = sorted(rng.uniform(0, 6.283) for _ in range(n))

    def ring(radius: float, centre=(cx, cy)) -> list[list[float]]:
        pts = []
        for a in angles:
            rr = radius * rng.uniform(0.5, 1.0)
            x = min(max(centre[0] + rr * math.cos(a), 0), width - 1)
            y = min(max(centre[1] + rr * math.sin(a), 0), height - 1)
            if rng.random() < 0.2:  # exact halves: numpy rounds them to even
                x, y = math.floor(x) + 0.5, math.floor(y) + 0.5
            pts.append([round(x, 2), round(y, 2)])
        return pts

    outer = ring(r)
    holes = [ring(r * 0.25)] if r > 20 and rng.random() < 0.4 else []
    return {"points": outer, "holes": holes}


def valid(shape: dict, width: int, height: int) -> bool:
    try:
        geometry.validate_lesion({"label": "benign", **shape}, width, height)
    except geometry.ContourError:
        return False
    return True


def test_the_browser_pixel_count_equals_the_server_one_on_random_shapes(login):
    reader = alice()
    image, _ = scan("AREA_001.png", reader, lesions=(), seed=4)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    rng = random.Random(7)
    shapes = [random_shape(rng, 200, 150) for _ in range(500)]
    shapes = [s for s in shapes if valid(s, 200, 150)][:300]  # what a save accepts
    # Thin and axis-aligned shapes, where the edge rules matter most.
    shapes += [
        {"points": [[10, 10], [60, 10], [60, 11], [10, 11]], "holes": []},
        {"points": [[10, 10], [11, 60], [12, 10]], "holes": []},
        {"points": [[5.5, 5.5], [40.5, 6.5], [20.5, 30.5]], "holes": []},
        {"points": [[0, 0], [199, 0], [199, 149], [0, 149]], "holes": [[[50, 50], [120, 50], [120, 100], [50, 100]]]},
    ]
    shown = page.evaluate(
        """async (shapes) => {
            const src = document.querySelector('script[type=module][src*="annotate"]').src;
            const { pixelArea } = await import(new URL("raster.js", src).href);
            return shapes.map((s) => pixelArea(s, 200, 150));
        }""",
        shapes,
    )
    expected = [
        geometry.pixel_area(geometry.Lesion(label="benign", points=s["points"], holes=s["holes"]), 200, 150)
        for s in shapes
    ]
    mismatches = [(s, a, b) for s, a, b in zip(shapes, shown, expected, strict=True) if a != b]
    assert mismatches == []
