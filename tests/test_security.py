"""Security settings: deploy checks, headers, password hashing, CSRF, nothing personal in logs."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

import busreview.settings as production_settings
from annotator.models import Image, Status
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from tests.factories import make_user, submitted_image

ROOT = Path(__file__).resolve().parent.parent


def server_env(**values) -> dict:
    """The environment of a deployed server: without the browser tests' async-unsafe switch."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**env, "DJANGO_SETTINGS_MODULE": "busreview.settings", **values}


def test_production_settings_pass_check_deploy_without_warnings():
    env = server_env(
        DEBUG="0", SECRET_KEY="k" * 20 + "-not-used-anywhere-" + "q7" * 20, ALLOWED_HOSTS="busreview.example.org"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = server_env(DEBUG="0", SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_bad_settings_values_fail_fast():
    env = server_env(DEBUG="maybe")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


def test_passwords_are_hashed_with_pbkdf2_in_production():
    assert production_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"


@pytest.mark.django_db
def test_security_headers_are_set():
    response = Client().get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp


@pytest.mark.django_db
def test_pages_have_no_inline_scripts_so_the_csp_holds():
    carol = make_user("carol", CURATOR)
    client = Client()
    client.force_login(carol)
    for url in ("/dataset/", "/dataset/export/", "/dataset/import/", "/dataset/audit/", "/api/docs/"):
        html = client.get(url).content.decode()
        for chunk in html.split("<script")[1:]:
            assert chunk.lstrip().startswith("src=") or " src=" in chunk.split(">", 1)[0], (url, chunk[:80])


@pytest.mark.django_db
def test_login_form_needs_csrf():
    make_user("alice", ANNOTATOR)
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_no_patient_identifier_or_pixels_reach_the_logs(sample_dir, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    call_command("import_dataset", str(sample_dir), "--as", "submitted", stdout=io.StringIO(), stderr=io.StringIO())
    bob = make_user("bob", REVIEWER)
    carol = make_user("carol", CURATOR)
    api = APIClient()
    api.force_authenticate(bob)
    for image in Image.objects.all()[:5]:
        api.post(f"/api/images/{image.pk}/approve/")
        api.post(f"/api/images/{image.pk}/approve/")  # a 409, which Django logs as a warning
    api.force_authenticate(carol)
    b"".join(api.get("/api/export/").streaming_content)
    api.get("/api/images/999999/")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "the run logged something (the check would be empty otherwise)"
    for code in ("CODE", "KIFO", "SECH"):
        assert code not in text
    assert "PNG" not in text and "\\x89" not in text


def _deployed_setting(name: str, **env) -> str:
    """A setting's value as a DEBUG=0 server would load it."""
    values = {"DEBUG": "0", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "busreview.example.org", **env}
    result = subprocess.run(
        [sys.executable, "-c", f"import busreview.settings as s; print(getattr(s, {name!r}, None))"],
        cwd=ROOT,
        env=server_env(**values),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_forwarded_proto_is_not_trusted_without_a_configured_proxy():
    assert _deployed_setting("SECURE_PROXY_SSL_HEADER") == "None"
    assert _deployed_setting("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY_COUNT="0") == "None"


def test_forwarded_proto_is_trusted_behind_a_configured_proxy():
    assert (
        _deployed_setting("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY_COUNT="1") == "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_a_negative_proxy_count_fails_fast():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=server_env(TRUSTED_PROXY_COUNT="-1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "TRUSTED_PROXY_COUNT" in result.stderr


@pytest.mark.django_db
def test_the_admin_cannot_change_the_fields_the_workflow_owns():
    alice = make_user("alice", ANNOTATOR)
    dave = make_user("dave", ANNOTATOR)
    image = submitted_image(alice, "ADMN_001.png")
    layer = image.layers.get()
    admin = make_user("admin", superuser=True)
    client = Client()
    client.force_login(admin)
    url = f"/admin/annotator/image/{image.pk}/change/"
    assert b"Dataset page" in client.get(url).content
    response = client.post(
        url,
        {
            "patient": image.patient_id,
            "name": "ADMN_002.png",
            "number": 2,
            "pixel_spacing_mm": "0.064",
            "status": Status.APPROVED,
            "annotator": dave.pk,
            "consensus": layer.pk,
            "doppler": "on",
            "marks": "on",
            "combined": "on",
        },
    )
    assert response.status_code == 302  # saved: the editable field changed, nothing else did
    image.refresh_from_db()
    assert image.pixel_spacing_mm == pytest.approx(0.064)
    assert (image.name, image.status, image.annotator, image.consensus) == (
        "ADMN_001.png",
        Status.SUBMITTED,
        alice,
        None,
    )
    assert (image.doppler, image.marks, image.combined) == (False, False, False)
    before = (layer.status, layer.author, layer.version)
    layer_url = f"/admin/annotator/masklayer/{layer.pk}/change/"
    client.post(layer_url, {"status": "approved", "author": dave.pk, "version": 99})
    layer.refresh_from_db()
    assert (layer.status, layer.author, layer.version) == before


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/phish", "http:///evil.example"])
def test_curator_forms_ignore_a_next_url_off_this_site(target):
    carol = make_user("carol", CURATOR)
    image = submitted_image(make_user("alice", ANNOTATOR), "NEXT_001.png")
    client = Client()
    client.force_login(carol)
    assigned = client.post("/dataset/assign/", {"images": [image.pk], "annotator": "alice", "next": target})
    reopened = client.post(f"/dataset/images/{image.pk}/reopen/", {"reason": "check", "next": target})
    assert assigned["Location"] == "/dataset/" and reopened["Location"] == "/dataset/"


@pytest.mark.django_db
def test_curator_forms_follow_a_next_path_on_this_site():
    carol = make_user("carol", CURATOR)
    image = submitted_image(make_user("alice", ANNOTATOR), "NEXT_001.png")
    client = Client()
    client.force_login(carol)
    assigned = client.post("/dataset/assign/", {"images": [image.pk], "annotator": "alice", "next": "/dataset/?page=2"})
    assert assigned["Location"] == "/dataset/?page=2"
