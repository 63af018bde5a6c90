"""Server-rendered pages: login everywhere, role checks, constant queries on list pages."""

import io
import zipfile

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotator import workflow
from annotator.models import Image, Status
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from tests.factories import PASSWORD, make_image, make_user, png_bytes, submitted_image

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/my-images/",
    "/review/",
    "/dataset/",
    "/dataset/import/",
    "/dataset/export/",
    "/dataset/audit/",
    "/agreement/",
    "/images/1/annotate/",
    "/images/1/review/",
    "/admin/",
]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", PAGES)
def test_every_page_needs_a_login(url):
    response = Client().get(url, follow=True)
    assert response.redirect_chain, url
    assert response.request["PATH_INFO"] == "/accounts/login/"
    assert b'name="password"' in response.content


def test_login_page_logs_in_and_home_sends_each_role_to_its_page():
    make_user("alice", ANNOTATOR)
    make_user("bob", REVIEWER)
    make_user("carol", CURATOR)
    for name, target in (("alice", "/my-images/"), ("bob", "/review/"), ("carol", "/dataset/")):
        client = Client()
        response = client.post("/accounts/login/", {"username": name, "password": PASSWORD})
        assert response.status_code == 302
        assert client.get("/")["Location"] == target


def test_login_attempts_are_throttled(settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    make_user("alice", ANNOTATOR)
    client = Client()
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    blocked = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429 and b"Too many failed attempts" in blocked.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("/my-images/", {ANNOTATOR}),
        ("/review/", {REVIEWER}),
        ("/dataset/", {CURATOR}),
        ("/dataset/import/", {CURATOR}),
        ("/dataset/export/", {CURATOR}),
        ("/dataset/audit/", {CURATOR}),
    ],
)
def test_pages_are_for_their_roles(url, allowed):
    for role in (ANNOTATOR, REVIEWER, CURATOR):
        response = logged_in(make_user(f"u-{role}", role)).get(url)
        assert response.status_code == (200 if role in allowed else 403), (role, url)


def test_annotation_page_is_only_for_the_assigned_annotator():
    alice = make_user("alice", ANNOTATOR)
    erin = make_user("erin", ANNOTATOR)
    image = make_image(annotator=alice)
    assert logged_in(alice).get(f"/images/{image.pk}/annotate/").status_code == 200
    assert logged_in(erin).get(f"/images/{image.pk}/annotate/").status_code == 404


def test_review_page_shows_submitted_images_to_other_readers():
    alice = make_user("alice", ANNOTATOR)
    bob = make_user("bob", REVIEWER)
    image = submitted_image(alice)
    response = logged_in(bob).get(f"/images/{image.pk}/review/")
    assert response.status_code == 200 and image.name.encode() in response.content
    unseen = make_image("ZZZZ_000.png", annotator=alice)
    assert logged_in(bob).get(f"/images/{unseen.pk}/review/").status_code == 404


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def add_images(n: int, start: int, annotator, reviewer=None):
    for i in range(start, start + n):
        image = make_image(f"PAGE_{i:03d}.png", annotator=annotator)
        if reviewer is not None:
            layer = workflow.start(image_id=image.pk, user=annotator)
            workflow.save_draft(
                layer_id=layer.pk,
                user=annotator,
                content=workflow.LayerContent(lesions=[], is_normal=True),
                expected_version=layer.version,
            )
            workflow.submit(layer_id=layer.pk, user=annotator)


@pytest.mark.parametrize(
    "url, role",
    [
        ("/my-images/", ANNOTATOR),
        ("/review/", REVIEWER),
        ("/dataset/", CURATOR),
        ("/dataset/audit/", CURATOR),
        ("/api/images/", CURATOR),
        ("/api/images/", ANNOTATOR),
        ("/api/images/", REVIEWER),
        ("/api/reviews/", REVIEWER),
        ("/api/audit/", CURATOR),
        ("/api/stats/", CURATOR),
    ],
)
def test_list_pages_run_a_constant_number_of_queries(url, role):
    alice = make_user("alice", ANNOTATOR)
    viewer = alice if role == ANNOTATOR else make_user("viewer", role)
    client = logged_in(viewer)
    add_images(3, 0, alice, reviewer=True)
    for image in Image.objects.filter(status=Status.SUBMITTED)[:2]:
        workflow.send_back(image_id=image.pk, user=make_user(f"r{image.pk}", REVIEWER), comment="x")
    few = queries_for(client, url)
    add_images(30, 100, alice, reviewer=True)
    for image in Image.objects.filter(status=Status.SUBMITTED)[:10]:
        workflow.send_back(image_id=image.pk, user=make_user(f"r{image.pk}", REVIEWER), comment="x")
    many = queries_for(client, url)
    assert few == many, f"{url}: {few} queries with few rows, {many} with many"


def test_curator_imports_from_the_browser_and_sees_the_report():
    carol = make_user("carol", CURATOR)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/WEBB_000.png", png_bytes())
        zf.writestr("images/notes.txt", b"hello")
    buf.seek(0)
    buf.name = "upload.zip"
    response = logged_in(carol).post("/dataset/import/", {"archive": buf, "as_status": "approved"})
    assert response.status_code == 200
    assert b"<strong>1</strong> imported" in response.content
    assert b"not a PNG image or INFO.csv" in response.content
    assert Image.objects.get().name == "WEBB_000.png"


def test_curator_downloads_the_export_from_the_page():
    carol = make_user("carol", CURATOR)
    response = logged_in(carol).get("/dataset/export/?download=1&formats=bus-uclm,coco")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert set(zf.namelist()) == {"INFO.csv", "annotations/instances.json"}


def test_curator_assigns_a_patient_and_reopens_an_image():
    carol = make_user("carol", CURATOR)
    alice = make_user("alice", ANNOTATOR)
    bob = make_user("bob", REVIEWER)
    make_image("ASGN_000.png")
    client = logged_in(carol)
    client.post("/dataset/assign/", {"patients": ["ASGN"], "annotator": "alice"})
    assert Image.objects.get(name="ASGN_000.png").annotator == alice
    done = submitted_image(alice, "DONE_000.png")
    workflow.approve(image_id=done.pk, user=bob)
    client.post(f"/dataset/images/{done.pk}/reopen/", {"reason": "recheck the margin"})
    assert Image.objects.get(pk=done.pk).status == Status.RETURNED


@pytest.mark.parametrize(
    "who, shown",
    [("alice", False), ("bob", False), ("dave", False), ("carol", True), ("admin", True)],
)
def test_the_api_link_is_in_the_top_bar_for_curators_and_admins_only(who, shown, request):
    """Readers work in the pages; the API link (permissions.API_DOCS) is for those who script."""
    page = logged_in(request.getfixturevalue(who)).get("/", follow=True).content.decode()
    topbar = page[page.index('<header class="topbar">') : page.index("</header>")]
    assert ('href="/api/docs/"' in topbar) is shown
    assert "My images" in topbar or "Review queue" in topbar or "Dataset" in topbar  # the bar itself is there
