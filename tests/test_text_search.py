"""The burned-in text search off the import's path: queued on a real RQ worker and Redis, the
curator refused until it has run, and run during the import when the queue cannot be reached."""

import django_rq
import pytest
from rest_framework.test import APIClient
from rq import SimpleWorker

from annotator.models import Image, Status
from tests.test_dicom_import import folder, run_import, synthetic

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings):
    settings.TEXT_SEARCH_INLINE = False
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def test_the_import_queues_the_search_and_the_curator_waits_for_it(queued, tmp_path, carol):
    output = run_import(folder(tmp_path, {"scan.dcm": synthetic()}))
    image = Image.objects.get()
    assert image.status == Status.REDACTION and image.text_boxes is None
    assert "text search queued" in output and queued.count == 1

    api = APIClient()
    api.force_authenticate(carol)
    early = api.post(f"/api/images/{image.pk}/redact/", {"boxes": []}, format="json")
    assert early.status_code == 409 and "has not run yet" in early.json()["detail"]
    image.refresh_from_db()
    assert image.status == Status.REDACTION

    SimpleWorker([queued], connection=queued.connection).work(burst=True)
    image.refresh_from_db()
    # The synthetic scan has a caption inside the tissue region (outside it was blanked).
    assert image.text_boxes and all(set(box) >= {"x", "y", "w", "h"} for box in image.text_boxes)
    done = api.post(f"/api/images/{image.pk}/redact/", {"boxes": image.text_boxes}, format="json")
    assert done.status_code == 200
    image.refresh_from_db()
    assert image.status == Status.NEW


def test_without_the_queue_the_search_runs_during_the_import(settings, tmp_path):
    settings.TEXT_SEARCH_INLINE = False
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0", "DEFAULT_TIMEOUT": 60}}
    output = run_import(folder(tmp_path, {"scan.dcm": synthetic()}))
    image = Image.objects.get()
    assert image.text_boxes, output  # searched here and now: never left unsearched
    assert "text search queued" not in output


def test_a_second_search_changes_nothing(settings, tmp_path):
    """A job that runs twice (a retried worker) keeps the first result; a released image is left alone."""
    from annotator import text_search

    run_import(folder(tmp_path, {"scan.dcm": synthetic()}))
    image = Image.objects.get()
    first = image.text_boxes
    assert text_search.search_all([image.pk]) == {image.pk: None}
    image.refresh_from_db()
    assert image.text_boxes == first
