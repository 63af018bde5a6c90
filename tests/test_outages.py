"""With Redis unreachable, people still log in, and a background export says so instead of hanging."""

from datetime import timedelta

import django_rq
import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from annotator.permissions import ANNOTATOR, CURATOR
from curator.models import ExportJob
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CLOSED_PORT}}
    settings.RQ_QUEUES = {"default": {"URL": CLOSED_PORT, "DEFAULT_TIMEOUT": 60}}
    for probe in (lambda: cache.get("anything"), lambda: django_rq.get_queue("default").count):
        with pytest.raises(RedisConnectionError):
            probe()  # the outage is real, for the cache and for the queue


def test_the_login_page_works_while_redis_is_down(redis_down):
    make_user("alice", ANNOTATOR)
    client = Client()
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.get("/my-images/").status_code == 200


def test_failed_logins_are_still_counted_while_redis_is_down(redis_down, settings):
    settings.LOGIN_FAILURES_ALLOWED = 2
    make_user("alice", ANNOTATOR)
    for _ in range(2):
        assert Client().post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 429


def test_the_token_endpoint_works_while_redis_is_down(redis_down):
    make_user("alice", ANNOTATOR)
    response = APIClient().post("/api/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/whoami/").json()["username"] == "alice"


def test_an_export_job_is_refused_with_503_and_leaves_no_job_while_redis_is_down(redis_down):
    api = APIClient()
    api.force_authenticate(make_user("carol", CURATOR))
    response = api.post("/api/export-jobs/", {"formats": "bus-uclm"}, format="json")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "queue_unavailable" and "Redis" in body["detail"]
    assert not ExportJob.objects.filter(status=ExportJob.Status.QUEUED).exists()
    # The page's list of jobs still answers.
    assert api.get("/api/export-jobs/").status_code == 200


def test_the_job_list_answers_while_redis_is_down_with_a_job_running(redis_down):
    carol = make_user("carol", CURATOR)
    job = ExportJob.objects.create(created_by=carol, status=ExportJob.Status.RUNNING, started_at=timezone.now())
    api = APIClient()
    api.force_authenticate(carol)
    response = api.get("/api/export-jobs/")
    assert response.status_code == 200 and response.json()[0]["status"] == "running"
    job.refresh_from_db()
    assert job.status == ExportJob.Status.RUNNING  # an unreadable heartbeat is not a dead worker


def test_a_job_no_worker_picks_up_fails_with_a_reason(settings):
    settings.EXPORT_QUEUE_TIMEOUT_S = 600
    carol = make_user("carol", CURATOR)
    waiting = ExportJob.objects.create(created_by=carol)
    ExportJob.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    fresh = ExportJob.objects.create(created_by=carol)
    api = APIClient()
    api.force_authenticate(carol)
    states = {job["id"]: job for job in api.get("/api/export-jobs/").json()}
    assert states[fresh.pk]["status"] == "queued"
    assert states[waiting.pk]["status"] == "failed"
    assert "no export worker picked this job up within 10 minutes" in states[waiting.pk]["error"]
    waiting.refresh_from_db()
    assert waiting.status == ExportJob.Status.FAILED and waiting.finished_at is not None
