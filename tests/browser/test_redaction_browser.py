"""DICOM in real Chromium: a ZIP of DICOM files imported from the page, then redacted on the
contact sheet by drawing a box; the stored pixels inside the confirmed boxes are all black."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import PIL.Image
import pytest

from annotator.models import Image, ImageData, Status
from annotator.permissions import CURATOR
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, make_user
from tests.test_dicom_import import synthetic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def stored(image: Image) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(bytes(ImageData.objects.get(image=image).png))).convert("RGB"))


def test_curator_imports_a_dicom_zip_and_confirms_boxes_on_the_contact_sheet(login, tmp_path):
    make_user("carol", CURATOR)
    archive = tmp_path / "dicom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("study/scan.dcm", synthetic())
    page = login("carol", PASSWORD)
    page.goto("/dataset/import/")
    page.set_input_files("input[name=archive]", str(archive))
    page.click("#import-form [type=submit]")
    page.locator("#dicom-report").wait_for()
    assert "study/scan.dcm" in page.locator("#dicom-report").inner_text()
    image = Image.objects.get()
    assert image.status == Status.REDACTION and image.text_boxes
    detected = [dict((k, b[k]) for k in ("x", "y", "w", "h")) for b in image.text_boxes]

    page.goto("/dataset/redaction/")
    figure = page.locator(f'figure[data-name="{image.name}"]')
    figure.locator("img").wait_for()
    page.wait_for_function("document.querySelector('figure.sheet-item img').complete")
    stage = figure.locator(".sheet-stage").bounding_box()
    # Drag a box over the image's top-left quarter (image pixels ~ 0-40 x 0-30 of 160 x 120).
    scale = stage["width"] / image.width
    page.mouse.move(stage["x"] + 2 * scale, stage["y"] + 2 * scale)
    page.mouse.down()
    page.mouse.move(stage["x"] + 40 * scale, stage["y"] + 30 * scale, steps=5)
    page.mouse.up()
    assert figure.locator(".box").count() == len(detected) + 1
    figure.locator("button.confirm").click()
    wait_until(lambda: Image.objects.get(pk=image.pk).status == Status.NEW, what="the image released")
    figure.wait_for(state="detached")
    image.refresh_from_db()
    assert image.text_boxes == []
    pixels = stored(image)
    for box in detected:
        assert (pixels[box["y"] : box["y"] + box["h"], box["x"] : box["x"] + box["w"]] == 0).all()
    drawn = pixels[3:29, 3:39]  # inside the dragged box whatever the rounding of the screen scale
    assert (drawn == 0).all()
    assert pixels[60:100, 100:150].any()  # the rest is kept
