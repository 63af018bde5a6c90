"""The redaction contact sheet (curator/views.redaction_page): who sees it and what it lists."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from annotator.models import Image
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_redaction_page_is_for_curators_only():
    for role, expected in ((ANNOTATOR, 403), (REVIEWER, 403), (CURATOR, 200)):
        assert logged_in(make_user(f"u-{role}", role)).get("/dataset/redaction/").status_code == expected


def test_the_sheet_lists_only_images_in_redaction_grouped_with_their_detected_boxes(image_in, carol):
    waiting = image_in("redaction", "REDA_000.png")
    image_in("new", "NEWW_000.png")
    response = logged_in(carol).get("/dataset/redaction/")
    html = response.content.decode()
    assert 'data-name="REDA_000.png"' in html and "NEWW_000.png" not in html
    assert "unknown model 96x64" in html  # the scanner group: model unknown, 96 x 64 pixels
    (figure,) = response.context["groups"][0][1]
    assert figure.pk == waiting.pk
    assert json.loads(figure.boxes_json) == [{"x": 2, "y": 2, "w": 20, "h": 8}]  # numbers only
    assert Image.objects.get(pk=waiting.pk).status == "redaction"


def test_the_redaction_page_needs_a_login():
    response = Client().get("/dataset/redaction/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_sheet_runs_a_constant_number_of_queries(alice, bob, carol):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import image_in

    client = logged_in(carol)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/dataset/redaction/").status_code == 200
        return len(ctx.captured_queries)

    image_in("redaction", annotator=alice, reviewer=bob, name="REDA_000.png")
    few = queries()
    for i in range(1, 8):
        image_in("redaction", annotator=alice, reviewer=bob, name=f"REDA_{i:03d}.png")
    assert queries() == few
