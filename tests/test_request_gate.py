"""From request to row: who may act is decided before the body is read, input is validated once,
and odd values (Unicode digits, huge ids, deep JSON, page sizes) get a 4xx, never a 500."""

import io
import zipfile

import numpy as np
import PIL.Image
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotator import geometry, importing, workflow
from annotator.models import AuditEvent, Image, Lesion, Patient, Status
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from tests.factories import PASSWORD, SQUARE, make_image, make_user, submitted_image

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ring(n: int, cx: float = 40, cy: float = 30, r: float = 20) -> list[list[float]]:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in angles]


@pytest.fixture
def draft():
    alice = make_user("alice", ANNOTATOR)
    image = make_image(annotator=alice)
    layer = workflow.start(image_id=image.pk, user=alice)
    return alice, image, layer


def test_a_user_who_may_not_edit_gets_403_before_the_geometry_is_read(draft):
    """A curator sees the draft but may not edit it: a malformed body is refused as 403, not
    parsed (before the fix it was validated first and answered 400)."""
    _, image, layer = draft
    carol = make_user("carol", CURATOR)
    body = {"version": layer.version, "lesions": [{"label": "benign", "points": "not a ring"}]}
    response = client_for(carol).put(f"/api/layers/{layer.pk}/", body, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_allowed"
    layer.refresh_from_db()
    assert layer.version == 1 and not layer.lesions.exists()


def test_another_annotator_gets_404_for_a_draft_they_cannot_see(draft):
    _, _, layer = draft
    erin = make_user("erin", ANNOTATOR)
    body = {"version": layer.version, "lesions": [{"label": "benign", "points": ring(10)}]}
    assert client_for(erin).put(f"/api/layers/{layer.pk}/", body, format="json").status_code == 404


def test_a_layer_over_the_total_point_cap_is_refused_before_its_points_are_checked(draft):
    """Each ring is under the per-ring cap but together they exceed the per-layer cap; the points
    are degenerate (all equal) so checking them one by one would have accepted them."""
    alice, _, layer = draft
    per_ring = geometry.MAX_POINTS_PER_RING
    count = geometry.MAX_POINTS_PER_LAYER // per_ring + 1
    lesions = [{"label": "benign", "points": [[1, 1]] * per_ring} for _ in range(count)]
    response = client_for(alice).put(
        f"/api/layers/{layer.pk}/", {"version": layer.version, "lesions": lesions}, format="json"
    )
    assert response.status_code == 400 and response.json()["rule"] == "too_many_points"
    assert not Lesion.objects.exists()


def test_too_many_lesions_are_refused_with_the_rule(draft):
    alice, _, layer = draft
    lesions = [{"label": "benign", "points": SQUARE}] * (geometry.MAX_LESIONS + 1)
    response = client_for(alice).put(
        f"/api/layers/{layer.pk}/", {"version": layer.version, "lesions": lesions}, format="json"
    )
    assert response.status_code == 400 and response.json()["rule"] == "too_many_lesions"


def test_a_contour_error_names_the_lesion_and_the_rule(draft):
    alice, _, layer = draft
    bowtie = [[10, 10], [40, 40], [40, 10], [10, 40]]
    lesions = [{"label": "benign", "points": SQUARE}, {"label": "malignant", "points": bowtie}]
    response = client_for(alice).put(
        f"/api/layers/{layer.pk}/", {"version": layer.version, "lesions": lesions}, format="json"
    )
    body = response.json()
    assert response.status_code == 400 and body["rule"] == "self_intersecting" and body["lesion"] == 1


def test_a_save_is_two_statements_and_returns_the_lesions_without_rereading(draft):
    alice, _, layer = draft
    body = {"version": layer.version, "lesions": [{"label": "malignant", "points": ring(72)}], "note": " keep "}
    client = client_for(alice)
    # force_authenticate skips the session/token lookup (and the roles read with it): what is left
    # is the save itself, a locking read of the layer with its image and one statement that writes
    # the lesions, the layer and the audit event, both prepared (PREPARE once per connection; in
    # the test's transaction, savepoints round the save).
    with CaptureQueriesContext(connection) as ctx:
        response = client.put(f"/api/layers/{layer.pk}/", body, format="json")
    statements = [
        q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "PREPARE"))
    ]
    assert [s.split("(")[0] for s in statements] == ["EXECUTE busreview_lock_layer", "EXECUTE busreview_save_draft"]
    data = response.json()
    assert response.status_code == 200 and data["version"] == 2 and data["note"] == " keep "
    assert [les["label"] for les in data["lesions"]] == ["malignant"]
    assert data["lesions"][0]["id"] == Lesion.objects.get().pk
    layer.refresh_from_db()
    assert (layer.version, layer.note, layer.status) == (2, " keep ", "draft")
    assert layer.updated_at.isoformat().replace("+00:00", "Z") == data["updated_at"]
    event = AuditEvent.objects.get(action="save_draft")
    assert (event.actor, event.image_id, event.layer_id) == (alice, layer.image_id, layer.pk)
    assert (event.from_status, event.to_status, event.detail) == ("draft", "draft", {"version": 2, "lesions": 1})


# --- defect 3: self-review through imported layers --------------------------------------------


def _zip_with_mask() -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        image = np.full((40, 60, 3), 90, dtype=np.uint8)
        mask = np.zeros((40, 60, 3), dtype=np.uint8)
        mask[10:20, 10:25] = (0, 255, 0)
        for folder, pixels in (("images", image), ("masks", mask)):
            out = io.BytesIO()
            PIL.Image.fromarray(pixels).save(out, format="PNG")
            zf.writestr(f"{folder}/DDDD_000.png", out.getvalue())
    buf.seek(0)
    return buf


def test_an_imported_layer_excludes_its_author_from_reviewing_the_image():
    """Imported as dave's draft, submitted by dave, reassigned to alice: dave must not see it in
    his review queue, and his decision is a 403, never the database constraint's 500."""
    dave = make_user("dave", ANNOTATOR, REVIEWER)
    alice = make_user("alice", ANNOTATOR)
    carol = make_user("carol", CURATOR)
    source = importing.zip_source(_zip_with_mask())
    importing.import_dataset(source, as_status=Status.DRAFT, actor=carol, annotator=dave)
    image = Image.objects.get()
    layer = image.layers.get()
    workflow.submit(layer_id=layer.pk, user=dave)
    workflow.assign(image_ids=[image.pk], annotator=alice, user=carol)

    client = client_for(dave)
    assert client.get("/api/review-queue/next/").json() == {"id": None}
    response = client.post(f"/api/images/{image.pk}/approve/")
    assert response.status_code == 403
    response = client.post(f"/api/images/{image.pk}/send-back/", {"comment": "mine"}, format="json")
    assert response.status_code == 403
    image.refresh_from_db()
    assert image.status == Status.SUBMITTED


def test_a_reviewer_who_edited_an_image_does_not_review_it_again():
    alice = make_user("alice", ANNOTATOR)
    bob = make_user("bob", REVIEWER)
    carol = make_user("carol", CURATOR)
    image = submitted_image(alice)
    layer = {"lesions": [{"label": "benign", "points": SQUARE}]}
    edited = client_for(bob).post(f"/api/images/{image.pk}/edit-approve/", {"layer": layer}, format="json")
    assert edited.status_code == 200
    workflow.reopen(image_id=image.pk, user=carol, reason="re-read")
    draft = workflow.start(image_id=image.pk, user=alice)
    workflow.submit(layer_id=draft.pk, user=alice)
    assert client_for(bob).post(f"/api/images/{image.pk}/approve/").status_code == 403


# --- defect 8: odd numbers and deep JSON -------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "٣", "1²", "99999999999999999999", "-1", " 1x"])
def test_numeric_query_values_that_are_not_plain_ids_get_400(value):
    alice = make_user("alice", ANNOTATOR)
    bob = make_user("bob", REVIEWER)
    image = submitted_image(alice)
    assert client_for(alice).get("/api/my-images/next/", {"after": value}).status_code == 400
    assert client_for(bob).get("/api/review-queue/next/", {"after": value}).status_code == 400
    assert client_for(bob).get(f"/api/images/{image.pk}/mask.png", {"layer": value}).status_code == 400


def test_deeply_nested_json_gets_400(draft):
    alice, _, layer = draft
    body = b'{"version": 1, "lesions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client_for(alice).generic("PUT", f"/api/layers/{layer.pk}/", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["²", "٣", "99999999999999999999", "abc"])
def test_the_assign_form_refuses_odd_image_ids_with_a_message(value):
    make_user("carol", CURATOR)
    make_user("alice", ANNOTATOR)
    image = make_image()
    client = Client()
    client.login(username="carol", password=PASSWORD)
    response = client.post("/dataset/assign/", {"images": [value], "annotator": "alice"}, follow=True)
    assert response.status_code == 200
    assert "Nothing assigned" in response.content.decode()
    image.refresh_from_db()
    assert image.annotator is None


def test_the_assign_form_and_the_api_both_refuse_an_unknown_annotator():
    """Before, the page un-assigned the images when the name was unknown; the API refused."""
    carol = make_user("carol", CURATOR)
    alice = make_user("alice", ANNOTATOR)
    image = make_image(annotator=alice)
    client = Client()
    client.force_login(carol)
    response = client.post("/dataset/assign/", {"images": [image.pk], "annotator": "nosuchuser"}, follow=True)
    assert "no user nosuchuser" in response.content.decode()
    api = client_for(carol).post("/api/assign/", {"images": [image.pk], "annotator": "nosuchuser"}, format="json")
    assert api.status_code == 400
    image.refresh_from_db()
    assert image.annotator == alice


def test_assigning_to_nobody_works_the_same_on_the_page_and_the_api():
    carol = make_user("carol", CURATOR)
    alice = make_user("alice", ANNOTATOR)
    first, second = make_image("AAAA_000.png", annotator=alice), make_image("AAAA_001.png", annotator=alice)
    client = Client()
    client.force_login(carol)
    client.post("/dataset/assign/", {"images": [first.pk], "annotator": ""})
    api = client_for(carol).post("/api/assign/", {"images": [second.pk], "annotator": None}, format="json")
    assert api.status_code == 200
    assert list(Image.objects.values_list("annotator", flat=True)) == [None, None]


# --- defect 11: page size ----------------------------------------------------------------------


def test_image_list_honours_page_size_up_to_500():
    carol = make_user("carol", CURATOR)
    patient = Patient.objects.create(code="PAGE")
    Image.objects.bulk_create(
        Image(patient=patient, name=f"PAGE_{i:03d}.png", number=i, width=8, height=8, checksum="x") for i in range(510)
    )
    client = client_for(carol)
    assert len(client.get("/api/images/").json()["results"]) == 50
    assert len(client.get("/api/images/", {"page_size": 120}).json()["results"]) == 120
    capped = client.get("/api/images/", {"page_size": 1000}).json()
    assert len(capped["results"]) == 500 and capped["count"] == 510


# --- the import form's options -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"annotator": "ali\x00ce"}, "annotator"),
        ({"as_status": "approved\x00"}, "as_status"),
        ({"as_status": "draft"}, "needs the annotator"),
        ({"annotator": "nosuchuser"}, "no user nosuchuser"),
    ],
)
def test_odd_import_options_are_a_clear_400_that_imports_nothing(fields, message):
    """A NUL byte in the annotator's name reached the database lookup (a 500 found by the fuzzer)."""
    carol = make_user("carol", CURATOR)
    make_user("alice", ANNOTATOR)
    response = client_for(carol).post("/api/import/", {"archive": _zip_with_mask(), **fields}, format="multipart")
    body = response.json()
    assert response.status_code == 400 and body["code"] == "import_refused" and message in body["detail"]
    assert not Image.objects.exists()


def test_the_written_out_layer_representation_equals_drfs_field_by_field_one(draft):
    """LayerSerializer and LesionSerializer write their output by hand for speed; it must stay
    what their declared fields give."""
    from rest_framework import serializers

    from annotator.serializers import LayerSerializer, LesionSerializer
    from tests.factories import content

    alice, image, layer = draft
    saved = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(("malignant", SQUARE), note="n"),
        expected_version=layer.version,
    )
    workflow.submit(layer_id=saved.pk, user=alice)
    layer = type(layer).objects.get(pk=layer.pk)
    by_fields = serializers.ModelSerializer.to_representation(LayerSerializer(layer), layer)
    by_fields["lesions"] = [
        serializers.ModelSerializer.to_representation(LesionSerializer(les), les) for les in layer.lesions.all()
    ]
    by_fields = {k: (list(v) if isinstance(v, list) else v) for k, v in by_fields.items()}
    assert LayerSerializer(layer).data == by_fields
    assert by_fields["submitted_at"] and by_fields["lesions"][0]["area_px"] == 31 * 31


def test_an_unassigned_image_lists_a_null_annotator_and_the_schema_allows_it():
    """Found by the schemathesis run: the list answered null where the schema promised a string."""
    from drf_spectacular.generators import SchemaGenerator

    carol = make_user("carol", CURATOR)
    make_image()
    row = client_for(carol).get("/api/images/").json()["results"][0]
    assert row["annotator"] is None
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["schemas"]["ImageList"]["properties"]["annotator"].get("nullable") is True
