"""The export page's background jobs in real Chromium: errors are shown and the polling stops.

A page that polls every second without end looks like an export that is still coming; when the
API refuses ({code, detail}, e.g. 503 with the queue unreachable) or a job fails, the curator
must read why, and the page must stop asking.
"""

from __future__ import annotations

import json
import time

import pytest

from curator.models import ExportJob
from tests.factories import PASSWORD, carol

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OPTIONS = {"formats": ["bus-uclm"], "patients": [], "exclude_doppler": False}


def job_requests(page) -> list[str]:
    """Every request the page sends to the export-jobs API, as "METHOD path", as it happens."""
    seen: list[str] = []
    page.on("request", lambda r: "/api/export-jobs/" in r.url and seen.append(f"{r.method} {r.url}"))
    return seen


def open_export(page) -> None:
    page.goto("/dataset/export/")
    page.wait_for_selector("#jobs tbody tr")


def quiet_for(seen: list[str], seconds: float = 2.5) -> bool:
    """No request in ``seconds``, more than twice the page's polling interval (1 s)."""
    before = len(seen)
    time.sleep(seconds)
    return len(seen) == before


def test_a_refused_export_shows_the_apis_detail_and_stops_polling(login):
    curator = carol()
    ExportJob.objects.create(created_by=curator, options=OPTIONS)  # queued: the page polls it
    page = login("carol", PASSWORD)
    seen = job_requests(page)
    open_export(page)
    page.wait_for_function("() => window.busExport.polling")
    assert page.get_attribute("#jobs tbody tr", "data-status") == "queued"

    def refuse(route):
        if route.request.method != "POST":
            return route.continue_()
        body = {"code": "export_unavailable", "detail": "export queue unavailable"}
        route.fulfill(status=503, content_type="application/json", body=json.dumps(body))

    page.route("**/api/export-jobs/", refuse)
    page.click("#start-job")
    page.wait_for_selector("#export-error:not([hidden])")
    assert "export queue unavailable" in page.text_content("#export-error")
    assert page.evaluate("window.busExport.polling") is False
    assert quiet_for(seen)
    assert ExportJob.objects.count() == 1  # the refused request made no job
    assert page.is_enabled("#start-job")
    assert page.js_errors == []


def test_an_unreadable_job_list_shows_the_detail_and_stops_polling(login):
    curator = carol()
    ExportJob.objects.create(created_by=curator, options=OPTIONS)
    page = login("carol", PASSWORD)
    seen = job_requests(page)
    open_export(page)
    page.wait_for_function("() => window.busExport.polling")

    body = json.dumps({"code": "unavailable", "detail": "progress store unreachable"})
    page.route(
        "**/api/export-jobs/", lambda route: route.fulfill(status=503, content_type="application/json", body=body)
    )
    page.wait_for_selector("#export-error:not([hidden])")
    assert "progress store unreachable" in page.text_content("#export-error")
    assert page.evaluate("window.busExport.polling") is False
    assert quiet_for(seen)
    assert page.js_errors == []


def test_a_failed_job_shows_its_error_and_the_polling_stops(login):
    curator = carol()
    job = ExportJob.objects.create(created_by=curator, options=OPTIONS)
    page = login("carol", PASSWORD)
    seen = job_requests(page)
    open_export(page)
    page.wait_for_function("() => window.busExport.polling")

    # The worker gives up: the next poll shows why, and there is nothing left to poll for.
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.FAILED, error="the queue never started it")
    page.wait_for_selector(f"#job-{job.pk}[data-status=failed]")
    assert "failed: the queue never started it" in page.text_content(f"#job-{job.pk}")
    page.wait_for_function("() => !window.busExport.polling")
    assert quiet_for(seen)
    page.reload()  # the failure is the server's state: a reload shows it again, without polling
    page.wait_for_selector(f"#job-{job.pk}[data-status=failed]")
    assert page.evaluate("window.busExport.polling") is False
    assert page.js_errors == []
