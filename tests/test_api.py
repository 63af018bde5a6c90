"""The REST API: every endpoint, each role, errors as clear 4xx that change nothing."""

import io
import json
import zipfile

import cv2
import numpy as np
import PIL.Image
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator.models import AuditEvent, Image, MaskLayer, Review, Status
from annotator.permissions import ANNOTATOR, REVIEWER
from tests.factories import SQUARE, TRIANGLE, make_image, make_user, png_bytes, submitted_image

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def lesion(label="malignant", points=SQUARE):
    return {"label": label, "points": points}


def draft(alice, **kw):
    image = make_image(annotator=alice, **kw)
    api = client_for(alice)
    layer = api.post(f"/api/images/{image.pk}/start/").json()
    return image, layer, api


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/images/",
        "/api/layers/1/",
        "/api/reviews/",
        "/api/audit/",
        "/api/export/",
        "/api/stats/",
        "/api/schema/",
        "/api/review-queue/next/",
    ],
)
def test_every_endpoint_needs_authentication(url):
    assert client_for(None).get(url).status_code in (401, 403)


def test_token_auth_works_for_scripts(alice):
    token = client_for(None).post("/api/token/", {"username": "alice", "password": "correct-horse-battery"}).json()
    assert token["token"] == Token.objects.get(user=alice).key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")
    assert api.get("/api/images/").status_code == 200


def test_session_writes_need_csrf(alice):
    image = make_image(annotator=alice)
    api = APIClient(enforce_csrf_checks=True)
    api.login(username="alice", password="correct-horse-battery")
    response = api.post(f"/api/images/{image.pk}/start/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert Image.objects.get(pk=image.pk).status == Status.NEW


def test_schema_and_docs_are_served(alice):
    api = client_for(alice)
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/layers/{id}/" in paths and "/api/images/{id}/send-back/" in paths
    assert api.get("/api/docs/").status_code == 200


# --- the loop through the API -----------------------------------------------------------------


def test_annotator_draws_saves_and_submits(alice):
    image, layer, api = draft(alice, width=96, height=64)
    assert layer["status"] == "draft" and layer["version"] == 1
    body = {"version": 1, "lesions": [lesion(), lesion("benign", TRIANGLE)], "doppler": True, "note": "two"}
    saved = api.put(f"/api/layers/{layer['id']}/", body, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2
    assert [les["label"] for les in saved.json()["lesions"]] == ["malignant", "benign"]
    stored = MaskLayer.objects.get(pk=layer["id"])
    assert stored.doppler is True and stored.lesions.get(index=0).points == [[float(x), float(y)] for x, y in SQUARE]
    submitted = api.post(f"/api/layers/{layer['id']}/submit/", {"version": 2}, format="json")
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_stale_save_gets_409_with_the_current_state(alice):
    image, layer, api = draft(alice)
    api.put(f"/api/layers/{layer['id']}/", {"version": 1, "lesions": [lesion()]}, format="json")
    stale = api.put(f"/api/layers/{layer['id']}/", {"version": 1, "lesions": []}, format="json")
    assert stale.status_code == 409
    body = stale.json()
    assert body["code"] == "stale_version" and body["current"]["version"] == 2
    assert len(body["current"]["lesions"]) == 1
    assert MaskLayer.objects.get(pk=layer["id"]).lesions.count() == 1


@pytest.mark.parametrize(
    "lesions, rule",
    [
        ([{"label": "benign", "points": [[1, 1], [2, 2]]}], "too_few_points"),
        ([{"label": "benign", "points": [[0, 0], [20, 20], [20, 0], [0, 20]]}], "self_intersecting"),
        ([{"label": "benign", "points": [[1, 1], [500, 2], [3, 9]]}], "out_of_bounds"),
        ([{"label": "cyst", "points": SQUARE}], "label"),
        ([{"points": SQUARE}], "label"),
        (["nonsense"], "format"),
    ],
)
def test_malformed_contours_get_a_400_naming_the_rule_and_change_nothing(alice, lesions, rule):
    image, layer, api = draft(alice)
    response = api.put(f"/api/layers/{layer['id']}/", {"version": 1, "lesions": lesions}, format="json")
    assert response.status_code == 400
    assert response.json()["rule"] == rule
    stored = MaskLayer.objects.get(pk=layer["id"])
    assert stored.version == 1 and stored.lesions.count() == 0


def test_nan_in_json_is_refused(alice):
    image, layer, api = draft(alice)
    body = '{"version": 1, "lesions": [{"label": "benign", "points": [[1, 1], [NaN, 2], [3, 9]]}]}'
    response = api.put(f"/api/layers/{layer['id']}/", body, content_type="application/json")
    assert response.status_code == 400
    assert MaskLayer.objects.get(pk=layer["id"]).version == 1


def test_reviewer_approves_and_sends_back(alice, bob):
    first = submitted_image(alice, "AAAA_000.png")
    second = submitted_image(alice, "AAAA_001.png")
    api = client_for(bob)
    assert api.get("/api/review-queue/next/").json()["id"] == first.pk
    approved = api.post(f"/api/images/{first.pk}/approve/", {"comment": "fine"}, format="json")
    assert approved.status_code == 200 and approved.json()["decision"] == "approved"
    no_comment = api.post(f"/api/images/{second.pk}/send-back/", {"comment": ""}, format="json")
    assert no_comment.status_code == 400
    sent = api.post(
        f"/api/images/{second.pk}/send-back/",
        {"comment": "margin", "remarks": [{"x": 20, "y": 20, "text": "here"}]},
        format="json",
    )
    assert sent.status_code == 200
    assert Image.objects.get(pk=second.pk).status == Status.RETURNED
    assert Review.objects.get(image=second).remarks.get().text == "here"
    detail = client_for(alice).get(f"/api/images/{second.pk}/").json()
    assert detail["reviews"][0]["comment"] == "margin" and detail["reviews"][0]["remarks"][0]["x"] == 20


def test_reviewer_edits_then_approves(alice, bob):
    image = submitted_image(alice)
    response = client_for(bob).post(
        f"/api/images/{image.pk}/edit-approve/",
        {"layer": {"lesions": [lesion("benign", TRIANGLE)], "marks": True}, "comment": "relabelled"},
        format="json",
    )
    assert response.status_code == 200, response.content
    image.refresh_from_db()
    assert image.status == Status.APPROVED and image.consensus.author == bob and image.marks is True
    assert [les.label for les in image.consensus.lesions.all()] == ["benign"]


def test_the_annotator_cannot_review_and_the_reviewer_cannot_draw(alice, bob):
    image = submitted_image(alice)
    assert client_for(alice).post(f"/api/images/{image.pk}/approve/").status_code == 403
    other = make_image("BBBB_000.png", annotator=alice)
    # A role without the action is refused before the image is looked up: the same 403 for
    # every id, so nothing is learnt about which images exist.
    assert client_for(bob).post(f"/api/images/{other.pk}/start/").status_code == 403
    assert client_for(bob).post("/api/images/999999/start/").status_code == 403
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_a_dual_role_user_cannot_review_own_work(alice):
    dave = make_user("dave", ANNOTATOR, REVIEWER)
    image = submitted_image(dave)
    response = client_for(dave).post(f"/api/images/{image.pk}/approve/")
    assert response.status_code == 403 and response.json()["code"] == "not_allowed"
    assert client_for(dave).get("/api/review-queue/next/").json()["id"] is None


def test_wrong_status_transition_is_a_409(alice, bob):
    image = submitted_image(alice)
    client_for(bob).post(f"/api/images/{image.pk}/approve/")
    again = client_for(bob).get(f"/api/images/{image.pk}/")
    assert again.status_code == 200
    response = client_for(make_user("zoe", REVIEWER)).post(f"/api/images/{image.pk}/send-back/", {"comment": "x"})
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"


def test_curator_reopens_with_a_reason(alice, bob, carol):
    image = submitted_image(alice)
    client_for(bob).post(f"/api/images/{image.pk}/approve/")
    assert client_for(carol).post(f"/api/images/{image.pk}/reopen/", {}, format="json").status_code == 400
    response = client_for(carol).post(f"/api/images/{image.pk}/reopen/", {"reason": "re-read"}, format="json")
    assert response.status_code == 200
    assert Image.objects.get(pk=image.pk).status == Status.RETURNED
    assert client_for(bob).post(f"/api/images/{image.pk}/reopen/", {"reason": "x"}).status_code == 403


def test_assign_by_patient(alice, carol):
    images = [make_image(f"CCCC_00{i}.png") for i in range(3)]
    assert (
        client_for(alice).post("/api/assign/", {"patients": ["CCCC"], "annotator": "alice"}, format="json").status_code
        == 403
    )
    response = client_for(carol).post("/api/assign/", {"patients": ["CCCC"], "annotator": "alice"}, format="json")
    assert response.json() == {"assigned": 3}
    assert {im.annotator_id for im in Image.objects.filter(pk__in=[i.pk for i in images])} == {alice.pk}


# --- reading ----------------------------------------------------------------------------------


def test_image_list_is_filtered_by_role(alice, bob, carol):
    submitted_image(alice, "AAAA_000.png")
    make_image("AAAA_001.png", annotator=alice)
    make_image("ZZZZ_000.png")
    names = lambda user: [r["name"] for r in client_for(user).get("/api/images/").json()["results"]]  # noqa: E731
    assert names(alice) == ["AAAA_000.png", "AAAA_001.png"]
    assert names(bob) == ["AAAA_000.png"]
    assert names(carol) == ["AAAA_000.png", "AAAA_001.png", "ZZZZ_000.png"]
    assert client_for(bob).get(f"/api/images/{Image.objects.get(name='ZZZZ_000.png').pk}/").status_code == 404


def test_image_png_and_mask_png(alice, bob):
    image = submitted_image(alice, width=96, height=64)
    api = client_for(bob)
    png = api.get(f"/api/images/{image.pk}/image.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert b"".join(png) == bytes(image.data.png)
    api.post(f"/api/images/{image.pk}/approve/")
    mask = np.asarray(PIL.Image.open(io.BytesIO(b"".join(api.get(f"/api/images/{image.pk}/mask.png")))))
    assert mask.shape == (64, 96, 3)
    assert tuple(mask[20, 20]) == (255, 0, 0) and tuple(mask[50, 80]) == (0, 0, 0)


def test_layers_history_and_reviews_list(alice, bob):
    image = submitted_image(alice)
    client_for(bob).post(f"/api/images/{image.pk}/send-back/", {"comment": "again"})
    history = client_for(alice).get(f"/api/images/{image.pk}/layers/").json()
    assert [(layer["revision"], layer["status"]) for layer in history] == [(1, "returned")]
    reviews = client_for(alice).get("/api/reviews/").json()["results"]
    assert [r["comment"] for r in reviews] == ["again"]
    assert client_for(make_user("erin", ANNOTATOR)).get("/api/reviews/").json()["results"] == []


def test_audit_and_stats_are_for_curators(alice, carol):
    submitted_image(alice)
    assert client_for(alice).get("/api/audit/").status_code == 403
    assert client_for(alice).get("/api/stats/").status_code == 403
    events = client_for(carol).get("/api/audit/").json()["results"]
    assert [e["action"] for e in events][-1] == "start"
    stats = client_for(carol).get("/api/stats/").json()
    assert stats["overall"]["submitted"] == 1 and stats["patients"][0]["patient"] == "AAAA"


def test_next_image_for_the_annotator_puts_returned_first(alice, bob):
    make_image("AAAA_000.png", annotator=alice)
    returned = submitted_image(alice, "AAAA_005.png")
    client_for(bob).post(f"/api/images/{returned.pk}/send-back/", {"comment": "fix"})
    assert client_for(alice).get("/api/my-images/next/").json()["id"] == returned.pk


# --- import and export over HTTP --------------------------------------------------------------


def zip_of(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    buf.seek(0)
    buf.name = "upload.zip"
    return buf


def test_import_zip_and_export_zip_over_http(alice, carol):
    mask = np.zeros((64, 96, 3), np.uint8)
    mask[10:30, 10:30] = (0, 255, 0)
    mask_png = io.BytesIO()
    PIL.Image.fromarray(mask).save(mask_png, format="PNG")
    upload = zip_of(
        {
            "images/DDDD_000.png": png_bytes(),
            "masks/DDDD_000.png": mask_png.getvalue(),
            "INFO.csv": (
                "\ufeffImage;Resolution;Label;Doppler;Marks;Combined\nDDDD_000.png;96x64;Benign;No;Yes;No\n"
            ).encode(),
        }
    )
    assert client_for(alice).post("/api/import/", {"archive": upload}, format="multipart").status_code == 403
    upload.seek(0)
    report = client_for(carol).post("/api/import/", {"archive": upload}, format="multipart").json()
    assert report["imported"] == 1 and report["defects"] == []
    image = Image.objects.get(name="DDDD_000.png")
    assert image.status == Status.APPROVED and image.marks is True
    assert client_for(alice).get("/api/export/").status_code == 403
    response = client_for(carol).get("/api/export/?formats=bus-uclm")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as zf:
        assert sorted(zf.namelist()) == ["INFO.csv", "images/DDDD_000.png", "masks/DDDD_000.png"]
        out = np.asarray(PIL.Image.open(io.BytesIO(zf.read("masks/DDDD_000.png"))))
        assert np.array_equal(out, mask)


def test_import_refuses_a_non_zip_and_unknown_status(carol):
    bad = io.BytesIO(b"not a zip")
    bad.name = "x.zip"
    response = client_for(carol).post("/api/import/", {"archive": bad}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "import_refused"
    response = client_for(carol).post(
        "/api/import/", {"images": [io.BytesIO(png_bytes())], "as_status": "weird"}, format="multipart"
    )
    assert response.status_code == 400
    assert not Image.objects.exists() and not AuditEvent.objects.exists()


def test_export_refuses_an_unknown_format(carol):
    response = client_for(carol).get("/api/export/?formats=yolo")
    assert response.status_code == 400 and "formats" in response.json()


def test_smart_contour_proposal_endpoint(alice, bob):
    image = submitted_image(alice, width=96, height=64)
    draft_image = make_image("PROP_000.png", annotator=alice, width=96, height=64)
    response = client_for(alice).post(
        f"/api/images/{draft_image.pk}/propose/", {"box": [10, 10, 60, 50]}, format="json"
    )
    assert response.status_code == 200
    points = response.json()["points"]
    assert len(points) >= 3 and all(10 <= x <= 60 and 10 <= y <= 50 for x, y in points)
    assert (
        client_for(bob).post(f"/api/images/{image.pk}/propose/", {"box": [10, 10, 60, 50]}, format="json").status_code
        == 200
    )
    bad = client_for(alice).post(f"/api/images/{draft_image.pk}/propose/", {"box": [10, 10, 12, 12]}, format="json")
    assert bad.status_code == 400 and "at least" in bad.json()["detail"]
    stranger = make_user("erin", ANNOTATOR)
    assert (
        client_for(stranger)
        .post(f"/api/images/{draft_image.pk}/propose/", {"box": [1, 1, 50, 50]}, format="json")
        .status_code
        == 404
    )


def test_smart_contour_corrections_change_the_proposal(alice):
    image = make_image("PROP_001.png", annotator=alice, width=96, height=64)
    url = f"/api/images/{image.pk}/propose/"
    client = client_for(alice)
    before = client.post(url, {"box": [10, 10, 60, 50]}, format="json")
    assert before.status_code == 200
    inside = client.post(url, {"box": [10, 10, 60, 50], "inside": [[80, 30]]}, format="json")
    assert inside.status_code == 200
    points = inside.json()["points"]
    # the box grows to hold the inside point: the outline now reaches it
    assert max(x for x, _ in points) >= 80 and points != before.json()["points"]
    outside = client.post(url, {"box": [10, 10, 60, 50], "outside": [[50, 30]]}, format="json")
    assert outside.status_code == 200
    assert cv2.pointPolygonTest(np.float32(before.json()["points"]), (50.0, 30.0), False) > 0
    assert cv2.pointPolygonTest(np.float32(outside.json()["points"]), (50.0, 30.0), False) < 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"box": [10, 10, 60, 50], "inside": "80,30"}, "inside"),
        ({"box": [10, 10, 60, 50], "inside": [[80]]}, "inside"),
        ({"box": [10, 10, 60, 50], "outside": [[80, 30, 1]]}, "outside"),
        ({"box": [10, 10, 60, 50], "outside": [["a", 30]]}, "outside"),
        ({"box": [10, 10, 60, 50], "outside": [[30, 30]] * 201}, "outside"),
        ({"box": [10, 10, 60, 50], "inside": [[500, 30]]}, "detail"),
        ({"point": [30, 30], "outside": [[-5, 30]]}, "detail"),
        ({"inside": [[30, 30]]}, "detail"),
    ],
)
def test_smart_contour_bad_corrections_are_400(alice, body, field):
    image = make_image("PROP_002.png", annotator=alice, width=96, height=64)
    events, layers = AuditEvent.objects.count(), MaskLayer.objects.count()
    response = client_for(alice).post(f"/api/images/{image.pk}/propose/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    if field == "detail":
        assert response.json()["code"] == "invalid"
    assert (AuditEvent.objects.count(), MaskLayer.objects.count()) == (events, layers)
