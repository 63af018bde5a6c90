"""What a browser may keep: pages never, API JSON only to revalidate, an image's PNG bytes for an hour."""

import pytest
from django.test import Client

from annotator import workflow
from tests.factories import TRIANGLE, content

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_are_never_stored_by_the_browser(alice, draft_image):
    client = signed_in(alice)
    for url in (f"/images/{draft_image.pk}/annotate/", "/my-images/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"], url


def test_image_json_is_revalidated_and_changes_when_the_layer_does(alice, draft_image):
    client = signed_in(alice)
    url = f"/api/images/{draft_image.pk}/"
    first = client.get(url, HTTP_ACCEPT="application/json")
    assert first.status_code == 200
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    assert "max-age" not in first["Cache-Control"]
    etag = first["ETag"]
    assert client.get(url, HTTP_ACCEPT="application/json", HTTP_IF_NONE_MATCH=etag).status_code == 304
    layer = draft_image.layers.get(status="draft")
    workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("malignant", TRIANGLE)), expected_version=layer.version
    )
    again = client.get(url, HTTP_ACCEPT="application/json", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 200 and again["ETag"] != etag


def test_image_png_stays_cacheable_and_masks_are_revalidated(alice, draft_image):
    client = signed_in(alice)
    png = client.get(f"/api/images/{draft_image.pk}/image.png")
    assert png.status_code == 200 and "max-age=3600" in png["Cache-Control"]
    layer = draft_image.layers.get(status="draft")
    mask = client.get(f"/api/images/{draft_image.pk}/mask.png?layer={layer.pk}")
    assert mask.status_code == 200 and "no-cache" in mask["Cache-Control"]
