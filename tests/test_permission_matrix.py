"""The role x action matrix over the API: one generated test per cell, lists included."""

import io
import zipfile

import pytest
from rest_framework.test import APIClient

from annotator import workflow
from annotator.models import Image, MaskLayer, Review, Status
from tests.factories import SELF_REVIEW_WORLDS, make_image, png_bytes

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
    "read the dataset settings": lambda w, c: c.get("/api/settings/"),
    "change the dataset settings": lambda w, c: c.put("/api/settings/", {"descriptors": "on"}, format="json"),
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
    "read the dataset settings": (200, 200, 200, 200, 200, 403),
    "change the dataset settings": (403, 403, 403, 200, 200, 403),
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


# --- blind double reading: alice and dave read; dave also reviews, which unlocks nothing -----------


@pytest.fixture
def blind_world(alice, erin, bob, carol, dave, admin):
    """DUAL_000 read blind by alice (a draft) and dave (submitted), DUAL_001 in adjudication, DUAL_002
    new and assigned to both, NEWW_000 a plain new image; bob adjudicates; erin is a stranger."""
    from tests.factories import OVERLAPPING_SQUARE, SQUARE, content, double_image_in

    users = {"owner": alice, "stranger": erin, "reviewer": bob, "curator": carol, "admin": admin, "anonymous": None}
    world = {"users": users, "new": make_image("NEWW_000.png")}
    for key, status in (("reading", "double_reading"), ("adjudication", "adjudication"), ("fresh", "new")):
        world[key] = double_image_in(
            status, first=alice, second=dave, adjudicator=bob, curator=carol, name=f"DUAL_00{len(world) - 2}.png"
        )
    # dave submits his reading of DUAL_000 (the factory leaves the second reader out of double_reading)
    layer = workflow.start_reading(image_id=world["reading"].pk, user=dave)
    workflow.save_draft(
        layer_id=layer.pk, user=dave, content=content(("malignant", OVERLAPPING_SQUARE)), expected_version=layer.version
    )
    workflow.submit_reading(layer_id=layer.pk, user=dave)
    for key in ("reading", "adjudication"):
        world[f"{key}:alice"] = world[key].layers.get(author=alice)
        world[f"{key}:dave"] = world[key].layers.get(author=dave)
    assert world["reading:alice"].lesions.get().points == [list(map(float, p)) for p in SQUARE]
    return world


BLIND_ACTIONS = {
    "view a blind reading": lambda w, c: c.get(f"/api/images/{w['reading'].pk}/"),
    "list the layers of a blind reading": lambda w, c: c.get(f"/api/images/{w['reading'].pk}/layers/"),
    "read the other reader's layer": lambda w, c: c.get(f"/api/layers/{w['reading:dave'].pk}/"),
    "read the other reader's mask": lambda w, c: c.get(
        f"/api/images/{w['reading'].pk}/mask.png?layer={w['reading:dave'].pk}"
    ),
    "save the other reader's layer": lambda w, c: c.put(
        f"/api/layers/{w['reading:dave'].pk}/", {"version": w["reading:dave"].version, "lesions": []}, format="json"
    ),
    "save one's own blind draft": lambda w, c: c.put(
        f"/api/layers/{w['reading:alice'].pk}/", {"version": w["reading:alice"].version, "lesions": []}, format="json"
    ),
    "submit one's own blind reading": lambda w, c: c.post(f"/api/layers/{w['reading:alice'].pk}/submit/"),
    "start a blind reading": lambda w, c: c.post(f"/api/images/{w['fresh'].pk}/start/"),
    "view an image in adjudication": lambda w, c: c.get(f"/api/images/{w['adjudication'].pk}/"),
    "read the other reader's layer in adjudication": lambda w, c: c.get(f"/api/layers/{w['adjudication:dave'].pk}/"),
    "adjudicate": lambda w, c: c.post(
        f"/api/images/{w['adjudication'].pk}/adjudicate/", {"layer": w["adjudication:alice"].pk}, format="json"
    ),
    "edit, then adjudicate": lambda w, c: c.post(
        f"/api/images/{w['adjudication'].pk}/adjudicate-edit/",
        {"start_from": "union", "layer": {"is_normal": True}},
        format="json",
    ),
    "send a reading back": lambda w, c: c.post(
        f"/api/images/{w['adjudication'].pk}/return-reading/",
        {"layers": [w["adjudication:alice"].pk], "comment": "x"},
        format="json",
    ),
    "combine the readings": lambda w, c: c.get(f"/api/images/{w['adjudication'].pk}/combined/?operation=union"),
    "assign two readers": lambda w, c: c.post(
        "/api/assign/", {"images": [w["new"].pk], "annotator": "alice", "second_annotator": "erin"}, format="json"
    ),
}

# fmt: off
#                                                 owner stranger reviewer curator admin anonymous
BLIND_MATRIX = {
    "view a blind reading":                          (200, 404, 404, 200, 200, 403),
    "list the layers of a blind reading":            (200, 404, 404, 200, 200, 403),
    "read the other reader's layer":                 (404, 404, 404, 200, 200, 403),
    "read the other reader's mask":                  (404, 404, 404, 200, 200, 403),
    "save the other reader's layer":                 (404, 404, 403, 403, 403, 403),
    "save one's own blind draft":                    (200, 404, 403, 403, 403, 403),
    "submit one's own blind reading":                (200, 404, 403, 403, 403, 403),
    "start a blind reading":                         (200, 404, 403, 403, 403, 403),
    "view an image in adjudication":                 (200, 404, 200, 200, 200, 403),
    "read the other reader's layer in adjudication": (404, 404, 200, 200, 200, 403),
    "adjudicate":                                    (403, 403, 200, 403, 403, 403),
    "edit, then adjudicate":                         (403, 403, 200, 403, 403, 403),
    "send a reading back":                           (403, 403, 200, 403, 403, 403),
    "combine the readings":                          (403, 403, 200, 403, 403, 403),
    "assign two readers":                            (403, 403, 403, 200, 200, 403),
}
# fmt: on
BLIND_CELLS = [(action, role) for action in BLIND_MATRIX for role in ROLES]


def test_the_blind_matrix_covers_every_blind_action():
    assert set(BLIND_MATRIX) == set(BLIND_ACTIONS)


@pytest.mark.parametrize("action, role", BLIND_CELLS, ids=[f"{a}-as-{r}" for a, r in BLIND_CELLS])
def test_blind_reading_permission_matrix(blind_world, action, role):
    client = APIClient()
    client.raise_request_exception = False  # a 500 must show as a 500
    if blind_world["users"][role] is not None:
        client.force_authenticate(blind_world["users"][role])
    response = BLIND_ACTIONS[action](blind_world, client)
    assert response.status_code == BLIND_MATRIX[action][ROLES.index(role)], response.content[:300]


def _texts(client, *paths) -> str:
    return "".join(client.get(p).content.decode(errors="replace") for p in paths)


def test_nothing_a_reader_is_sent_tells_the_other_readers_drawing_or_lesion_count(blind_world, bob, dave):
    """alice's image detail, layers, reviews, worklists and next-image answers hold her own layer
    only: not dave's points, lesions, label, layer id or the send-back of his layer."""
    from tests.factories import OVERLAPPING_SQUARE

    w = blind_world
    alice = w["users"]["owner"]
    # bob sends dave's adjudicated reading back: the adjudication image is read again, blind.
    workflow.return_reading(
        image_id=w["adjudication"].pk, user=bob, layer_ids=[w["adjudication:dave"].pk], comment="dave: wider rim"
    )
    client = APIClient()
    client.force_authenticate(alice)
    for key in ("reading", "adjudication"):
        detail = client.get(f"/api/images/{w[key].pk}/").json()
        assert detail["open_layer"]["author"] == "alice" or detail["open_layer"] is None
        assert [layer["author"] for layer in detail["readings"]] == ["alice"]
        assert detail["reading_agreement"] is None
        assert detail["reviews"] == []
        assert (detail["previous_layer"] or {"author": "alice"})["author"] == "alice"
        layers = client.get(f"/api/images/{w[key].pk}/layers/").json()
        assert {layer["author"] for layer in layers} == {"alice"}
    sent = _texts(
        client,
        f"/api/images/{w['reading'].pk}/",
        f"/api/images/{w['adjudication'].pk}/",
        f"/api/images/{w['reading'].pk}/layers/",
        f"/api/images/{w['adjudication'].pk}/layers/",
        "/api/reviews/",
        "/api/images/?page_size=500",
        "/api/my-images/next/",
    )
    dave_points = str([list(map(float, p)) for p in OVERLAPPING_SQUARE]).replace(" ", "")
    assert dave_points not in sent.replace(" ", "")
    assert "malignant" not in sent and "wider rim" not in sent
    for key in ("reading:dave", "adjudication:dave"):  # neither as a layer nor as a reviewed layer
        layer = w[key]
        assert f'"id":{layer.pk},"image":{layer.image_id},' not in sent.replace(" ", "")
        assert f'"layer":{layer.pk},' not in sent.replace(" ", "")
    page = APIClient()
    page.force_login(alice)
    html = page.get("/my-images/").content.decode()
    assert "DUAL_000.png" in html and "malignant" not in html and "wider rim" not in html
    # dave, a reviewer too, sees the images as their reader, not as a reviewer: his layers only.
    page.force_login(dave)
    for key in ("reading", "adjudication"):
        detail = page.get(f"/api/images/{w[key].pk}/").json()
        assert {layer["author"] for layer in detail["readings"]} <= {"dave"} and not detail["can_adjudicate"]
        assert {layer["author"] for layer in page.get(f"/api/images/{w[key].pk}/layers/").json()} == {"dave"}


@pytest.mark.parametrize(
    "path, body",
    [
        ("adjudicate/", "alice"),
        ("adjudicate-edit/", {"start_from": "union", "layer": {"is_normal": True}}),
        ("return-reading/", "alice"),
        ("combined/?operation=union", None),
    ],
)
def test_a_reader_who_reviews_may_not_adjudicate_their_own_reading_403_not_500(blind_world, dave, path, body):
    w = blind_world
    client = APIClient()
    client.raise_request_exception = False
    client.force_authenticate(dave)
    if body == "alice":
        body = {"layer": w["adjudication:alice"].pk, "layers": [w["adjudication:alice"].pk], "comment": "x"}
    url = f"/api/images/{w['adjudication'].pk}/{path}"
    response = client.get(url) if body is None else client.post(url, body, format="json")
    assert response.status_code == 403, response.content[:300]
    assert response.json()["code"] == "not_allowed"
    w["adjudication"].refresh_from_db()
    assert w["adjudication"].status == Status.ADJUDICATION and not Review.objects.exists()
