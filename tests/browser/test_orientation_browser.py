"""An imported PNG with an EXIF orientation: the pixel a reader sees at (x, y) is the pixel stored.

Chromium turns a PNG by its eXIf orientation before drawing it; the server, the masks and the
contours use the stored grid. The import stores the image upright and without the tag, so the
annotation page's image and the server's pixels are the same grid.
"""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
import pytest

from annotator import importing
from annotator.models import Image, ImageData
from tests.factories import PASSWORD, alice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 120, 80  # stored as 80 x 120 once turned
MARKER = (5, 3, 10, 6)  # x, y, w, h of a red block near the top-left corner of the file's grid

# The annotation page's own <img> (the one its Konva canvas draws), drawn 1:1 into a fresh canvas.
READ_PAGE_IMAGE = """() => {
  const img = window.busViewer._image.image();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return {
    natural: [img.naturalWidth, img.naturalHeight],
    viewer: [window.busViewer.width, window.busViewer.height],
    rgba: Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data),
  };
}"""


def oriented_png(orientation: int) -> bytes:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    rgb = np.stack([(xx * 2) % 200, (yy * 3) % 256, np.full_like(xx, 40)], axis=-1).astype(np.uint8)
    x, y, w, h = MARKER
    rgb[y : y + h, x : x + w] = (255, 0, 0)
    exif = PIL.Image.Exif()
    exif[importing.ORIENTATION_TAG] = orientation
    buf = io.BytesIO()
    PIL.Image.fromarray(rgb).save(buf, format="PNG", exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [6, 8])
def test_the_pixel_a_reader_sees_is_the_pixel_stored(login, orientation):
    reader = alice()
    source = importing.Source(images={"TURN_000.png": lambda: oriented_png(orientation)})
    report = importing.import_dataset(source, actor=reader, annotator=reader)
    assert report.imported == ["TURN_000.png"]
    image = Image.objects.get(name="TURN_000.png")
    stored = np.asarray(PIL.Image.open(io.BytesIO(bytes(ImageData.objects.get(image=image).png))).convert("RGB"))

    page = login("alice", PASSWORD)
    page.goto(f"/images/{image.pk}/annotate/")
    page.wait_for_function("() => window.busPage && window.busPage.ready && window.busViewer.imageLoaded")
    seen = page.evaluate(READ_PAGE_IMAGE)

    assert seen["natural"] == seen["viewer"] == [image.width, image.height] == [HEIGHT, WIDTH]
    shown = np.array(seen["rgba"], dtype=np.uint8).reshape(image.height, image.width, 4)[..., :3]
    assert np.abs(shown.astype(int) - stored.astype(int)).max() <= 2  # no colour management on untagged PNGs
    # The marker is where both the reader and the server have it: turned with the picture.
    red = np.argwhere((shown[..., 0] > 200) & (shown[..., 1] < 60))
    red_stored = np.argwhere((stored[..., 0] > 200) & (stored[..., 1] < 60))
    assert red.shape[0] == MARKER[2] * MARKER[3] and np.array_equal(red, red_stored)
    assert page.js_errors == []
