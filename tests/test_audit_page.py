"""The audit log page: readable details with people named, an image filter, events counted as events."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotator import workflow
from annotator.models import AuditEvent
from annotator.permissions import ANNOTATOR, CURATOR
from tests.factories import make_image, make_user

pytestmark = pytest.mark.django_db


def curator_client() -> Client:
    client = Client()
    client.force_login(make_user("carol", CURATOR))
    return client


def audit_rows(client: Client, query: str = "") -> tuple[str, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/dataset/audit/{query}")
    assert response.status_code == 200
    return response.content.decode(), len(ctx.captured_queries)


def test_audit_detail_names_people_and_reads_as_text():
    client = curator_client()
    carol = make_user("carol-2", CURATOR)
    alice = make_user("alice", ANNOTATOR)
    erin = make_user("erin", ANNOTATOR)
    image = make_image("AUDT_000.png", annotator=alice)
    workflow.assign(image_ids=[image.pk], annotator=erin, user=carol)
    workflow.start(image_id=image.pk, user=erin)
    html, _ = audit_rows(client)
    assert "from alice to erin" in html
    assert "revision 1" in html
    assert "{&#x27;" not in html and "{'" not in html  # no raw Python dict
    assert f"&#x27;annotator&#x27;: {erin.pk}" not in html


def test_audit_page_filters_by_image_name_with_a_form():
    client = curator_client()
    alice = make_user("alice", ANNOTATOR)
    kept = make_image("KEEP_000.png", annotator=alice)
    other = make_image("OTHR_000.png", annotator=alice)
    workflow.start(image_id=kept.pk, user=alice)
    workflow.start(image_id=other.pk, user=alice)
    html, _ = audit_rows(client)
    assert 'id="audit-filter"' in html and 'name="image"' in html
    assert "KEEP_000.png" in html and "OTHR_000.png" in html
    html, _ = audit_rows(client, "?image=KEEP_000.png")
    assert "KEEP_000.png" in html and "OTHR_000.png" not in html
    assert 'value="KEEP_000.png"' in html


def test_audit_pager_counts_events_and_keeps_the_filter():
    client = curator_client()
    alice = make_user("alice", ANNOTATOR)
    image = make_image("MANY_000.png", annotator=alice)
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=alice, image=image, action="save_draft", detail={"version": i}) for i in range(130)
    )
    html, _ = audit_rows(client, "?image=MANY_000.png")
    assert "Page 1 of 2 (130 events)" in html
    assert "130 images" not in html
    assert 'href="?image=MANY_000.png&amp;page=2"' in html


def test_audit_page_resolves_names_in_a_constant_number_of_queries():
    client = curator_client()
    curator = make_user("cur", CURATOR)
    people = [make_user(f"reader{i}", ANNOTATOR) for i in range(12)]
    image = make_image("QRYS_000.png", annotator=people[0])
    workflow.assign(image_ids=[image.pk], annotator=people[1], user=curator)
    _, few = audit_rows(client)
    for b in people[2:]:
        workflow.assign(image_ids=[image.pk], annotator=b, user=curator)
    html, many = audit_rows(client)
    assert "from reader10 to reader11" in html
    assert few == many, f"{few} queries with 1 event, {many} with 11"


def test_an_overlong_image_filter_is_refused_with_a_message_not_an_error():
    client = curator_client()
    alice = make_user("alice", ANNOTATOR)
    workflow.start(image_id=make_image("LONG_000.png", annotator=alice).pk, user=alice)
    html, _ = audit_rows(client, "?image=" + "x" * 100)
    assert "Filter ignored" in html
    assert "LONG_000.png" in html  # the whole log, unfiltered
