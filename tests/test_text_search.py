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


@pytest.mark.django_db(transaction=True)
def test_two_imports_meeting_one_new_patient_at_once_give_one_patient(tmp_path, monkeypatch):
    """Both imports reach the patient lookup together (a barrier holds them there): before the
    advisory lock, both missed the key, both created the patient, and one file failed."""
    import threading

    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotator import importing
    from annotator.importing import dicom as dicom_import
    from annotator.models import Patient, PatientKey

    actor = get_user_model().objects.create_user("importer-test")
    barrier = threading.Barrier(2, timeout=30)
    original = dicom_import._patient

    def meet_then_look_up(patient_hash):
        barrier.wait()
        return original(patient_hash)

    monkeypatch.setattr(dicom_import, "_patient", meet_then_look_up)
    reports = []

    def run(k: int) -> None:
        try:
            source = importing.folder_source(
                folder(tmp_path / str(k), {"scan.dcm": synthetic(seed=k, sop_uid=f"1.2.826.0.1.3680043.2.1125.7{k}")})
            )
            reports.append(importing.import_dataset(source, actor=actor))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [len(r.imported) for r in reports] == [1, 1], [r.defects for r in reports]
    assert Patient.objects.count() == 1 and PatientKey.objects.count() == 1
    assert sorted(Image.objects.values_list("number", flat=True)) == [0, 1]


def test_the_viewer_header_names_both_spacings_when_x_and_y_differ(alice):
    """(That a DICOM import stores ``pixel_spacing_mm`` as √(x·y), so areas use x·y, is tested on a
    real import in tests/test_dicom_import.py.)"""
    import math

    from django.test import Client

    from tests.factories import make_image

    image = make_image(annotator=alice)
    image.pixel_spacing_x_mm, image.pixel_spacing_y_mm = 0.1, 0.2
    image.pixel_spacing_mm = math.sqrt(0.1 * 0.2)
    image.save()
    client = Client()
    client.force_login(alice)
    page = client.get(f"/images/{image.pk}/annotate/").content.decode()
    assert "0.1 × 0.2 mm/px (x × y)" in page
