"""The list thumbnail endpoint: small, cached, permission-checked like the pixels themselves."""

import hashlib
import io

import PIL.Image
import pytest
from rest_framework.test import APIClient

from annotator import thumbnails
from annotator.models import Image, ImageData
from tests.factories import make_image, png_bytes

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_the_thumbnail_fits_160_px_keeps_the_aspect_and_can_be_cached(alice):
    image = make_image("THMB_000.png", width=856, height=606, annotator=alice)
    response = client_for(alice).get(f"/api/images/{image.pk}/thumb.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=3600"
    with PIL.Image.open(io.BytesIO(response.content)) as im:
        assert im.size == (160, 113)  # 606 * 160 / 856 = 113.3
    assert len(response.content) < len(bytes(ImageData.objects.get(image=image).png)) / 10
    again = client_for(alice).get(f"/api/images/{image.pk}/thumb.png", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again.content == b""


def test_a_thumbnail_is_made_once_and_a_redaction_gives_a_new_one(alice, monkeypatch):
    image = make_image("THMB_001.png", width=300, height=200, annotator=alice)
    made = []
    real = thumbnails.make_thumbnail
    monkeypatch.setattr(thumbnails, "make_thumbnail", lambda png, size=160: made.append(1) or real(png, size))
    c = client_for(alice)
    first = c.get(f"/api/images/{image.pk}/thumb.png")
    second = c.get(f"/api/images/{image.pk}/thumb.png")
    assert len(made) == 1 and first.content == second.content  # the second came from the cache
    # Pixels rewritten as a redaction does it: the picture and its checksum together.
    new = png_bytes(300, 200, seed=5)
    ImageData.objects.filter(image=image).update(png=new)
    Image.objects.filter(pk=image.pk).update(checksum=hashlib.sha256(new).hexdigest())
    third = c.get(f"/api/images/{image.pk}/thumb.png", HTTP_IF_NONE_MATCH=first["ETag"])
    assert third.status_code == 200 and third["ETag"] != first["ETag"] and len(made) == 2


def test_a_small_picture_is_not_scaled_up():
    with PIL.Image.open(io.BytesIO(thumbnails.make_thumbnail(png_bytes(96, 64)))) as im:
        assert im.size == (96, 64)
