"""BI-RADS descriptors, the required mode and the ruler in real Chromium, with what was stored
checked in the database."""

from __future__ import annotations

import random
import re

import pytest

from annotator import dataset_settings, geometry, measurements, workflow
from annotator.models import Image, MaskLayer
from tests.browser.conftest import wait_until
from tests.browser.test_annotation_flow import HEIGHT, WIDTH, open_annotate, open_review, to_page
from tests.browser.test_readers_desk import random_shape, valid
from tests.factories import PASSWORD, alice, bob, carol, make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECT = [[200.0, 150.0], [400.0, 150.0], [400.0, 250.0], [200.0, 250.0]]


def draft_image(name: str, annotator, lesions=None, **kw) -> tuple[Image, MaskLayer]:
    image = make_image(name, width=WIDTH, height=HEIGHT, annotator=annotator, **kw)
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=annotator,
        expected_version=layer.version,
        content=workflow.LayerContent(lesions=lesions or [geometry.Lesion("malignant", RECT)]),
    )
    return image, layer


def test_descriptors_are_set_by_keyboard_and_saved(login, artifacts):
    dataset_settings.set_descriptor_mode(mode="on", user=carol())
    annotator = alice()
    image, layer = draft_image("DESC_000.png", annotator, pixel_spacing_mm=0.1)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    # The measurements of the 200 x 100 px rectangle: 0.1 mm/px, diagonal 22.4 mm, 201 x 101 px painted.
    item = page.locator("#lesion-list li").first
    assert "20,301 px · 203.0 mm²" in item.inner_text()
    assert "⌀ 22.4 × 11.2 mm" in item.inner_text()
    assert "Not described" in item.inner_text()

    page.locator("body").click(position={"x": 5, "y": 5})  # focus the page, not a field
    page.keyboard.press("k")  # jumps to the first descriptor, selecting lesion 1
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'desc-shape'")
    assert page.locator("#descriptor-panel h2").text_content() == "BI-RADS · lesion 1 (malignant)"
    page.keyboard.type("ir")  # Irregular
    page.keyboard.press("Tab")
    page.keyboard.type("not")  # Not parallel
    page.keyboard.press("Tab")  # margin: circumscribed
    page.keyboard.press("Tab")  # indistinct
    page.keyboard.press("Tab")  # angular
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # microlobulated
    page.keyboard.press("Tab")  # spiculated
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # echo pattern
    page.keyboard.type("hypo")
    page.keyboard.press("Tab")  # posterior features
    page.keyboard.type("sha")
    page.keyboard.press("Alt+a")  # the assessment, by its access key
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'assessment'")
    page.keyboard.type("4c")
    expected = {
        "shape": "irregular",
        "orientation": "not_parallel",
        "margin": ["angular", "spiculated"],
        "echo_pattern": "hypoechoic",
        "posterior_features": "shadowing",
    }

    def saved():
        layer.refresh_from_db()
        lesion = layer.lesions.get()
        return lesion.descriptors == expected and layer.assessment == "4C"

    wait_until(saved, what="the descriptors and the assessment saved")
    assert "Margin: angular, spiculated" in page.locator("#lesion-list li").first.inner_text()
    page.screenshot(path=str(artifacts / "birads-panel.png"))

    # Ticking "circumscribed" clears the not-circumscribed margins (they cannot go together).
    page.locator("#desc-margin input[value=circumscribed]").check()
    wait_until(lambda: layer.lesions.get().descriptors.get("margin") == ["circumscribed"], what="margin replaced")
    # Undo brings the previous margins back, and that is saved too.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    wait_until(lambda: layer.lesions.get().descriptors.get("margin") == ["angular", "spiculated"], what="undone")

    # The reviewer sees them read-only once submitted.
    assert page.evaluate("() => window.busPage.saveNow()")
    workflow.submit(layer_id=layer.pk, user=annotator)
    bob()
    reviewer = login("bob", PASSWORD)
    open_review(reviewer, image)
    assert "Shape: irregular" in reviewer.locator("#lesion-list li").first.inner_text()
    reviewer.locator("#lesion-list li").first.click()
    assert reviewer.locator("#desc-shape").input_value() == "irregular"
    assert reviewer.locator("#desc-shape").is_disabled()
    assert reviewer.locator("#assessment").input_value() == "4C"
    # A remark pinned to the lesion shows what was described, to write against.
    reviewer.locator("#lesion-list li button", has_text="remark").click()
    assert "Described as: Shape: irregular" in reviewer.locator("#remarks").inner_text()
    assert page.js_errors == [] and reviewer.js_errors == []


def test_required_mode_blocks_submission_with_a_message_naming_the_lesion(login):
    dataset_settings.set_descriptor_mode(mode="required", user=carol())
    image, layer = draft_image("REQU_000.png", alice())
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    assert "missing: shape, orientation, margin, echo pattern, posterior features" in (
        page.locator("#lesion-list li").first.inner_text()
    )
    page.locator("#submit").click()
    error = page.locator("#page-error")
    error.wait_for(state="visible")
    assert re.search(
        r"Not submitted: BI-RADS descriptors are required for submission: lesion 1 \(malignant\) "
        r"lacks shape, orientation, margin, echo pattern, posterior features",
        error.inner_text(),
    )
    assert "assessment category" in error.inner_text()
    assert Image.objects.get(pk=image.pk).status == "draft"
    assert MaskLayer.objects.get(pk=layer.pk).status == "draft"
    assert page.js_errors == []


def test_the_ruler_measures_millimetres_on_a_calibrated_image_and_stores_nothing(login):
    annotator = alice()
    image = make_image("RULE_000.png", width=WIDTH, height=HEIGHT, annotator=annotator, pixel_spacing_mm=0.1414)
    Image.objects.filter(pk=image.pk).update(pixel_spacing_x_mm=0.1, pixel_spacing_y_mm=0.2)
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("l")
    assert page.locator("#tool-ruler").get_attribute("aria-pressed") == "true"
    # 100 px down at 0.2 mm per row: 20 mm (the X spacing would say 10).
    page.mouse.move(*to_page(page, 300, 200))
    page.mouse.down()
    page.mouse.move(*to_page(page, 300, 250), steps=3)
    page.mouse.move(*to_page(page, 300, 300), steps=3)
    page.mouse.up()
    text = page.locator("#ruler-readout").inner_text()
    value = float(re.search(r"Ruler: ([0-9.]+) mm", text).group(1))
    assert abs(value - 20.0) <= 0.3, text
    assert page.evaluate("() => window.busViewer.lesions.length") == 0
    page.keyboard.press("l")
    assert page.locator("#ruler-readout").inner_text() == ""
    # Display only: no lesion drawn, no draft started, nothing saved.
    page.wait_for_timeout(1200)
    assert not MaskLayer.objects.filter(image=image).exists()
    assert page.js_errors == []


def test_the_browser_diameters_equal_the_server_ones_on_random_shapes(login):
    """measure.js (the side panel) and annotator/measurements.py (the lesions export) agree."""
    image = make_image("DIAM_000.png", width=WIDTH, height=HEIGHT, annotator=alice())
    page = login("alice", PASSWORD)
    open_annotate(page, image)
    rng = random.Random(11)
    shapes = [s["points"] for s in (random_shape(rng, 200, 150) for _ in range(200)) if valid(s, 200, 150)][:120]
    shapes += [RECT, [[0, 0], [30, 0], [30, 20], [25, 20], [25, 5], [5, 5], [5, 20], [0, 20]]]
    spacings = [None, {"x": 0.1, "y": 0.1}, {"x": 0.07, "y": 0.2}]
    shown = page.evaluate(
        """async ([shapes, spacings]) => {
            const src = document.querySelector('script[type=module][src*="annotate"]').src;
            const { diameters } = await import(new URL("measure.js", src).href);
            return spacings.map((sp) => shapes.map((s) => {
                const d = diameters(s, sp);
                return [d.longest, d.perpendicular, d.unit];
            }));
        }""",
        [shapes, spacings],
    )
    for sp, results in zip(spacings, shown, strict=True):
        spacing = measurements.Spacing(sp["x"], sp["y"]) if sp else None
        for points, (longest, perpendicular, unit) in zip(shapes, results, strict=True):
            m = measurements.measure(points, area_px=0, spacing=spacing)
            assert unit == m.unit
            assert longest == pytest.approx(m.longest, abs=1e-6), points
            assert perpendicular == pytest.approx(m.perpendicular, abs=1e-6), points
    assert page.js_errors == []


def test_the_reviewer_corrects_descriptors_in_edit_then_approve(login):
    dataset_settings.set_descriptor_mode(mode="on", user=carol())
    described = {"shape": "oval", "margin": ["circumscribed"]}
    annotator = alice()
    image, layer = draft_image("EDIT_000.png", annotator, [geometry.Lesion("benign", RECT, descriptors=described)])
    MaskLayer.objects.filter(pk=layer.pk).update(assessment="3")
    workflow.submit(layer_id=layer.pk, user=annotator)
    bob()
    page = login("bob", PASSWORD)
    open_review(page, image)
    page.locator("#edit-approve").click()
    page.locator("#lesion-list li").first.click()
    assert not page.locator("#desc-shape").is_disabled()
    page.locator("#lesion-list li").first.focus()
    page.keyboard.press("k")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'desc-shape'")
    page.keyboard.type("irr")
    page.locator("#desc-margin input[value=spiculated]").check()  # clears "circumscribed"
    page.locator("#assessment").select_option("4C")
    page.locator("#confirm-edit-approve").click()
    page.wait_for_url(lambda url: "/review/" in url and f"/images/{image.pk}/" not in url)
    consensus = Image.objects.get(pk=image.pk).consensus
    assert consensus.source == "reviewer_edit" and consensus.assessment == "4C"
    assert consensus.lesions.get().descriptors == {"shape": "irregular", "margin": ["spiculated"]}
    assert page.js_errors == []
