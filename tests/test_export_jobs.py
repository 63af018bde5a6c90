"""Background exports on a real RQ worker and Redis: progress, download, failure, lost worker."""

import io
import time
import zipfile

import django_rq
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rq import SimpleWorker

from annotator import workflow
from annotator.permissions import ANNOTATOR
from curator import jobs
from curator.models import ExportChunk, ExportJob
from tests.factories import make_user, submitted_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue():
    q = django_rq.get_queue("default")
    q.empty()
    yield q
    q.empty()


def run_worker(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.fixture
def approved_images(alice, bob):
    images = [submitted_image(alice, f"JOBS_{i:03d}.png") for i in range(3)]
    for image in images:
        workflow.approve(image_id=image.pk, user=bob)
    return images


def test_a_job_exports_in_the_background_and_its_zip_downloads(
    queue, approved_images, django_capture_on_commit_callbacks, carol
):
    api = APIClient()
    api.force_authenticate(carol)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/export-jobs/", {"formats": "bus-uclm", "patients": "JOBS"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued"
    assert queue.count == 1
    run_worker(queue)
    job = api.get(f"/api/export-jobs/{created.json()['id']}/").json()
    assert job["status"] == "done" and job["percent"] == 100 and job["images"] == 3
    download = api.get(f"/api/export-jobs/{job['id']}/download/")
    data = b"".join(download.streaming_content)
    assert len(data) == job["size"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(n for n in zf.namelist() if n.startswith("masks/")) == [
            f"masks/JOBS_{i:03d}.png" for i in range(3)
        ]


def test_a_failed_job_says_why(queue, approved_images, monkeypatch, django_capture_on_commit_callbacks, carol):
    def broken(*args, **kwargs):
        raise OSError("disk full")
        yield b""

    monkeypatch.setattr(jobs.exporting, "iter_zip", broken)
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.start_export(user=carol, options=jobs.exporting.ExportOptions())
    run_worker(queue)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED and job.error == "OSError: disk full"
    assert not ExportChunk.objects.filter(job=job).exists()


def test_a_job_whose_worker_vanished_is_reported_failed(approved_images, carol):
    job = ExportJob.objects.create(created_by=carol, status=ExportJob.Status.RUNNING)
    cache.set(jobs._progress_key(job.pk), {"done": 1, "total": 3, "at": time.time() - jobs.STALE_AFTER_S - 5})
    state = jobs.state(job)
    assert state["status"] == "failed" and "worker stopped" in state["error"]
    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED


def test_progress_is_reported_while_running(approved_images, carol):
    job = ExportJob.objects.create(created_by=carol, status=ExportJob.Status.RUNNING)
    cache.set(jobs._progress_key(job.pk), {"done": 1, "total": 4, "at": time.time()})
    assert jobs.state(job)["percent"] == 25


def test_only_curators_use_export_jobs(approved_images):
    api = APIClient()
    api.force_authenticate(make_user("erin", ANNOTATOR))
    assert api.get("/api/export-jobs/").status_code == 403
    assert api.post("/api/export-jobs/", {}, format="json").status_code == 403
    assert not ExportJob.objects.exists()


def test_download_of_an_unfinished_job_is_refused(carol):
    job = ExportJob.objects.create(created_by=carol)
    api = APIClient()
    api.force_authenticate(carol)
    assert api.get(f"/api/export-jobs/{job.pk}/download/").status_code == 400
