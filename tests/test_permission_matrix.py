"""The role x action matrix over the API: one generated test per cell, lists included."""

import io
import zipfile

import pytest
from rest_framework.test import APIClient

from annotator.models import Image, MaskLayer, Review, Status
from tests.factories import SELF_REVIEW_WORLDS, png_bytes

pytestmark = pytest.mark.django_db

ROLES = ("owner", "stranger", "reviewer", "curator", "admin", "anonymous")


@pytest.fixture
def world(alice, erin, bob, carol, admin, image_in):
    """alice's images in each status (bob reviews), and the users by role; erin is another annotator."""
    users = {"owner": alice, "stranger": erin, "reviewer": bob, "curator": carol, "admin": admin, "anonymous": None}
    draft = image_in("draft", "DRAF_000.png")
    return {
        "users": users,
        "new": image_in("new", "NEWW_000.png"),
        "draft": draft,
        "layer": draft.layers.get(),
        "submitted": image_in("submitted", "SUBM_000.png"),
        "approved": image_in("approved", "APPR_000.png"),
        "redaction": image_in("redaction", "REDA_000.png"),  # assigned to alice, hidden from her
    }


def zip_upload() -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/MTRX_000.png", png_bytes())
    buf.seek(0)
    buf.name = "m.zip"
    return buf


ACTIONS = {
    "view a submitted image": lambda w, c: c.get(f"/api/images/{w['submitted'].pk}/"),
    "view a draft image": lambda w, c: c.get(f"/api/images/{w['draft'].pk}/"),
    "view the pixels of a draft": lambda w, c: c.get(f"/api/images/{w['draft'].pk}/image.png"),
    "view the thumbnail of a draft": lambda w, c: c.get(f"/api/images/{w['draft'].pk}/thumb.png"),
    "view the thumbnail of a submitted image": lambda w, c: c.get(f"/api/images/{w['submitted'].pk}/thumb.png"),
    "start a new image": lambda w, c: c.post(f"/api/images/{w['new'].pk}/start/"),
    "save a draft": lambda w, c: c.put(
        f"/api/layers/{w['layer'].pk}/", {"version": w["layer"].version, "lesions": []}, format="json"
    ),
    "submit a draft": lambda w, c: c.post(f"/api/layers/{w['layer'].pk}/submit/"),
    "approve": lambda w, c: c.post(f"/api/images/{w['submitted'].pk}/approve/"),
    "send back": lambda w, c: c.post(f"/api/images/{w['submitted'].pk}/send-back/", {"comment": "x"}),
    "edit and approve": lambda w, c: c.post(
        f"/api/images/{w['submitted'].pk}/edit-approve/", {"layer": {"is_normal": True}}, format="json"
    ),
    "reopen": lambda w, c: c.post(f"/api/images/{w['approved'].pk}/reopen/", {"reason": "r"}),
    "assign": lambda w, c: c.post("/api/assign/", {"images": [w["new"].pk], "annotator": "erin"}, format="json"),
    "import": lambda w, c: c.post("/api/import/", {"archive": zip_upload()}, format="multipart"),
    "export": lambda w, c: c.get("/api/export/"),
    "start an export job": lambda w, c: c.post("/api/export-jobs/", {}, format="json"),
    "read the audit log": lambda w, c: c.get("/api/audit/"),
    "read the counts": lambda w, c: c.get("/api/stats/"),
    "view an image in redaction": lambda w, c: c.get(f"/api/images/{w['redaction'].pk}/"),
    "view the pixels of an image in redaction": lambda w, c: c.get(f"/api/images/{w['redaction'].pk}/image.png"),
    "view the thumbnail of an image in redaction": lambda w, c: c.get(f"/api/images/{w['redaction'].pk}/thumb.png"),
    "start an image in redaction": lambda w, c: c.post(f"/api/images/{w['redaction'].pk}/start/"),
    "redact": lambda w, c: c.post(
        f"/api/images/{w['redaction'].pk}/redact/", {"boxes": [{"x": 0, "y": 0, "w": 10, "h": 10}]}, format="json"
    ),
}

#                              owner stranger reviewer curator admin anonymous
MATRIX = {
    "view a submitted image": (200, 404, 200, 200, 200, 403),
    "view a draft image": (200, 404, 404, 200, 200, 403),
    "view the pixels of a draft": (200, 404, 404, 200, 200, 403),
    "view the thumbnail of a draft": (200, 404, 404, 200, 200, 403),
    "view the thumbnail of a submitted image": (200, 404, 200, 200, 200, 403),
    "start a new image": (200, 404, 403, 403, 403, 403),
    "save a draft": (200, 404, 403, 403, 403, 403),
    "submit a draft": (200, 404, 403, 403, 403, 403),
    "approve": (403, 403, 200, 403, 403, 403),
    "send back": (403, 403, 200, 403, 403, 403),
    "edit and approve": (403, 403, 200, 403, 403, 403),
    "reopen": (403, 403, 403, 200, 200, 403),
    "assign": (403, 403, 403, 200, 200, 403),
    "import": (403, 403, 403, 200, 200, 403),
    "export": (403, 403, 403, 200, 200, 403),
    "start an export job": (403, 403, 403, 201, 201, 403),
    "read the audit log": (403, 403, 403, 200, 200, 403),
    "read the counts": (403, 403, 403, 200, 200, 403),
    "view an image in redaction": (404, 404, 404, 200, 200, 403),
    "view the pixels of an image in redaction": (404, 404, 404, 200, 200, 403),
    "view the thumbnail of an image in redaction": (404, 404, 404, 200, 200, 403),
    "start an image in redaction": (404, 404, 403, 403, 403, 403),
    "redact": (403, 403, 403, 200, 200, 403),
}
CELLS = [(action, role) for action in MATRIX for role in ROLES]


@pytest.mark.parametrize("action, role", CELLS, ids=[f"{a}-as-{r}" for a, r in CELLS])
def test_permission_matrix(world, action, role, django_capture_on_commit_callbacks):
    client = APIClient()
    if world["users"][role] is not None:
        client.force_authenticate(world["users"][role])
    expected = MATRIX[action][ROLES.index(role)]
    with django_capture_on_commit_callbacks(execute=False):  # export jobs are queued, not run
        response = ACTIONS[action](world, client)
    assert response.status_code == expected


def test_the_matrix_covers_every_action():
    assert set(MATRIX) == set(ACTIONS)


LIST_ROLES = ("owner", "stranger", "reviewer", "curator", "admin")
VISIBLE = {
    "owner": {"NEWW_000.png", "DRAF_000.png", "SUBM_000.png", "APPR_000.png"},
    "stranger": set(),
    "reviewer": {"SUBM_000.png", "APPR_000.png"},
    "curator": {"NEWW_000.png", "DRAF_000.png", "SUBM_000.png", "APPR_000.png", "REDA_000.png"},
    "admin": {"NEWW_000.png", "DRAF_000.png", "SUBM_000.png", "APPR_000.png", "REDA_000.png"},
}


@pytest.mark.parametrize("role", LIST_ROLES)
def test_lists_leak_nothing(world, role):
    client = APIClient()
    user = world["users"][role]
    client.force_authenticate(user)
    names = {row["name"] for row in client.get("/api/images/?page_size=500").json()["results"]}
    assert names == VISIBLE[role]
    visible_ids = set(Image.objects.filter(name__in=VISIBLE[role]).values_list("pk", flat=True))
    reviews = client.get("/api/reviews/").json()["results"]
    assert {r["image"] for r in reviews} <= visible_ids
    assert len(reviews) == Review.objects.filter(image__in=visible_ids).count()
    for layer in MaskLayer.objects.all():
        code = client.get(f"/api/layers/{layer.pk}/").status_code
        assert code == (200 if layer.image_id in visible_ids else 404), (role, layer)
    for status in ("redaction", "new", "draft", "submitted", "approved"):
        filtered = {row["name"] for row in client.get(f"/api/images/?status={status}").json()["results"]}
        assert filtered <= VISIBLE[role]


# --- a reviewer who authored any layer of an image is refused over the API, never with a 500 ----

DECISIONS = {
    "approve": ("approve/", {}),
    "send back": ("send-back/", {"comment": "mine"}),
    "edit and approve": ("edit-approve/", {"layer": {"is_normal": True}}),
}
SELF_REVIEW_CASES = [
    pytest.param(source, decision, id=f"{decision}-{source}")
    for source in ("drawn", "imported", "reviewer_edit")
    for decision in DECISIONS
]


@pytest.mark.parametrize("source, decision", SELF_REVIEW_CASES)
def test_a_reviewer_deciding_on_a_layer_they_authored_gets_a_403(source, decision, alice, carol, dave):
    """dave authored a layer (drawn, imported or edited as reviewer) of alice's submitted image: 403, no change."""
    image = SELF_REVIEW_WORLDS[source](alice=alice, carol=carol, dave=dave)
    client = APIClient()
    client.raise_request_exception = False  # a 500 must show as a 500, not as the server's exception
    client.force_authenticate(dave)
    path, body = DECISIONS[decision]
    reviews = Review.objects.count()
    response = client.post(f"/api/images/{image.pk}/{path}", body, format="json")
    assert response.status_code == 403, response.content[:300]
    assert response.json()["code"] == "not_allowed"
    image.refresh_from_db()
    assert image.status == Status.SUBMITTED and Review.objects.count() == reviews
