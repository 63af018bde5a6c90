"""The bad-input catalogue: every case gets a clear 4xx (or CLI error) and changes nothing."""

import functools
import io
import json
import zipfile
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from annotator import workflow
from annotator.models import AuditEvent, Image, ImageData, Lesion, MaskLayer, Remark, Review
from tests.factories import SQUARE, content, make_image, png_bytes, submitted_image

pytestmark = pytest.mark.django_db

W, H = 96, 64


def snapshot() -> tuple:
    """Everything a bad request could have changed."""
    return (
        list(Image.objects.order_by("pk").values_list("pk", "status", "annotator_id", "consensus_id", "doppler")),
        list(MaskLayer.objects.order_by("pk").values_list("pk", "status", "version", "is_normal", "note")),
        list(Lesion.objects.order_by("pk").values_list("pk", "label", "points")),
        Review.objects.count(),
        Remark.objects.count(),
        AuditEvent.objects.count(),
        ImageData.objects.count(),
    )


@dataclass
class World:
    alice: object
    bob: object
    carol: object
    dave: object
    draft: Image
    layer: MaskLayer
    submitted: Image
    approved: Image
    own: Image  # submitted by dave, who also reviews
    extra: dict = field(default_factory=dict)

    def api(self, user, csrf: bool = False) -> APIClient:
        client = APIClient(enforce_csrf_checks=csrf)
        if csrf:
            client.login(username=user.username, password="correct-horse-battery")
        else:
            client.force_authenticate(user)
        return client


@pytest.fixture
def world(alice, bob, carol, dave) -> World:
    draft = make_image("DRAF_000.png", annotator=alice)
    layer = workflow.start(image_id=draft.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)), expected_version=layer.version
    )
    submitted = submitted_image(alice, "SUBM_000.png")
    approved = submitted_image(alice, "APPR_000.png")
    workflow.approve(image_id=approved.pk, user=bob)
    own = submitted_image(dave, "OWNN_000.png")
    return World(alice, bob, carol, dave, draft, layer, submitted, approved, own)


def save(w: World, body, raw: bool = False):
    url = f"/api/layers/{w.layer.pk}/"
    if raw:
        return w.api(w.alice).put(url, body, content_type="application/json")
    return w.api(w.alice).put(url, {"version": w.layer.version, **body}, format="json")


def lesion_body(points, label="benign", **extra):
    return {"lesions": [{"label": label, "points": points, **extra}]}


def png_of(array) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def upload(w: World, user=None, **files):
    payload = {}
    for key, items in files.items():
        if isinstance(items, list):
            payload[key] = []
            for name, data in items:
                f = io.BytesIO(data)
                f.name = name
                payload[key].append(f)
        elif isinstance(items, tuple):
            f = io.BytesIO(items[1])
            f.name = items[0]
            payload[key] = f
        else:
            payload[key] = items
    return w.api(user or w.carol).post("/api/import/", payload, format="multipart")


def zip_bytes(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@functools.cache
def bomb() -> bytes:
    return png_of(np.zeros((10_000, 10_000), np.uint8))  # 100 Mpx in a ~100 kB file


CASES = {
    # malformed contours
    "too few points": (lambda w: save(w, lesion_body([[1, 1], [5, 5]])), 400),
    "NaN coordinate": (
        lambda w: save(
            w, '{"version": 2, "lesions": [{"label": "benign", "points": [[1,1],[NaN,2],[3,9]]}]}', raw=True
        ),
        400,
    ),
    "Infinity coordinate": (
        lambda w: save(
            w, '{"version": 2, "lesions": [{"label": "benign", "points": [[1,1],[Infinity,2],[3,9]]}]}', raw=True
        ),
        400,
    ),
    "out of bounds": (lambda w: save(w, lesion_body([[1, 1], [W + 5, 2], [3, 9]])), 400),
    "negative coordinate": (lambda w: save(w, lesion_body([[-1, 1], [20, 2], [3, 9]])), 400),
    "self-intersecting": (lambda w: save(w, lesion_body([[0, 0], [20, 20], [20, 0], [0, 20]])), 400),
    "huge point array": (lambda w: save(w, lesion_body([[i % W, (i // W) % H] for i in range(20_001)])), 400),
    "too many lesions": (lambda w: save(w, {"lesions": [{"label": "benign", "points": SQUARE}] * 501}), 400),
    "points not a list": (lambda w: save(w, lesion_body("1,1 2,2 3,3")), 400),
    "point with strings": (lambda w: save(w, lesion_body([[1, 1], ["a", 2], [3, 9]])), 400),
    "malformed hole": (lambda w: save(w, lesion_body(SQUARE, holes=[[[1, 1]]])), 400),
    # wrong labels and flags
    "unknown label": (lambda w: save(w, lesion_body(SQUARE, label="cyst")), 400),
    "missing label": (lambda w: save(w, {"lesions": [{"points": SQUARE}]}), 400),
    "normal with lesions": (lambda w: save(w, {**lesion_body(SQUARE), "is_normal": True}), 400),
    "flag not boolean": (lambda w: save(w, {"lesions": [], "doppler": "maybe"}), 400),
    "note too long": (lambda w: save(w, {"lesions": [], "note": "x" * 5000}), 400),
    # bodies and versions
    "malformed JSON": (lambda w: save(w, '{"version": 2, "lesions": [', raw=True), 400),
    "body is a list": (lambda w: save(w, "[1, 2, 3]", raw=True), 400),
    "missing version": (lambda w: save(w, '{"lesions": []}', raw=True), 400),
    "stale version": (lambda w: save(w, '{"version": 1, "lesions": []}', raw=True), 409),
    # wrong status transitions
    "submit an approved layer": (
        lambda w: w.api(w.alice).post(f"/api/layers/{MaskLayer.objects.get(image=w.approved).pk}/submit/"),
        409,
    ),
    "approve twice": (lambda w: w.api(w.bob).post(f"/api/images/{w.approved.pk}/approve/"), 409),
    "start an approved image": (lambda w: w.api(w.alice).post(f"/api/images/{w.approved.pk}/start/"), 409),
    "reopen a submitted image": (
        lambda w: w.api(w.carol).post(f"/api/images/{w.submitted.pk}/reopen/", {"reason": "x"}),
        409,
    ),
    "send back without comment": (
        lambda w: w.api(w.bob).post(f"/api/images/{w.submitted.pk}/send-back/", {"comment": " "}),
        400,
    ),
    "remark outside the image": (
        lambda w: w.api(w.bob).post(
            f"/api/images/{w.submitted.pk}/send-back/",
            {"comment": "c", "remarks": [{"x": 5000, "y": 1, "text": "t"}]},
            format="json",
        ),
        400,
    ),
    "reopen without reason": (lambda w: w.api(w.carol).post(f"/api/images/{w.approved.pk}/reopen/", {}), 400),
    "edit-approve with a bad contour": (
        lambda w: w.api(w.bob).post(
            f"/api/images/{w.submitted.pk}/edit-approve/", {"layer": lesion_body([[1, 1], [2, 2]])}, format="json"
        ),
        400,
    ),
    # wrong role, someone else's image
    "reviewer approves own annotation": (lambda w: w.api(w.dave).post(f"/api/images/{w.own.pk}/approve/"), 403),
    "annotator approves": (lambda w: w.api(w.alice).post(f"/api/images/{w.submitted.pk}/approve/"), 403),
    "reviewer reopens": (
        lambda w: w.api(w.bob).post(f"/api/images/{w.approved.pk}/reopen/", {"reason": "x"}),
        403,
    ),
    "another annotator saves the draft": (
        lambda w: w.api(w.dave).put(f"/api/layers/{w.layer.pk}/", {"version": 2, "lesions": []}, format="json"),
        404,
    ),
    "another annotator opens the image": (lambda w: w.api(w.dave).get(f"/api/images/{w.draft.pk}/"), 404),
    "reviewer starts a draft": (lambda w: w.api(w.bob).post(f"/api/images/{w.submitted.pk}/start/"), 403),
    "annotator exports": (lambda w: w.api(w.alice).get("/api/export/"), 403),
    "reviewer imports": (lambda w: upload(w, w.bob, images=[("NEWW_000.png", png_bytes())]), 403),
    "annotator assigns": (
        lambda w: w.api(w.alice).post("/api/assign/", {"images": [w.draft.pk], "annotator": "dave"}, format="json"),
        403,
    ),
    "assign to a reviewer": (
        lambda w: w.api(w.carol).post("/api/assign/", {"images": [w.draft.pk], "annotator": "bob"}, format="json"),
        400,
    ),
    "missing CSRF on a session save": (
        lambda w: w.api(w.alice, csrf=True).put(
            f"/api/layers/{w.layer.pk}/", {"version": 2, "lesions": []}, format="json"
        ),
        403,
    ),
    # files
    "non-image upload": (lambda w: upload(w, images=[("NEWW_000.png", b"GIF89a not a png")]), 400),
    "truncated PNG": (lambda w: upload(w, images=[("NEWW_000.png", png_bytes()[:100])]), 400),
    "decompression bomb": (lambda w: upload(w, images=[("BOMB_000.png", bomb())]), 400),
    "not a ZIP": (lambda w: upload(w, archive=("x.zip", b"PK\x03\x04 broken")), 400),
    "ZIP with only path tricks": (
        lambda w: upload(w, archive=("x.zip", zip_bytes({"../../etc/EVIL_000.png": png_bytes()}))),
        400,
    ),
    "INFO.csv without images": (lambda w: upload(w, info_csv=("INFO.csv", b"Image;Label\n")), 400),
    "import as an unknown status": (
        lambda w: upload(w, images=[("NEWW_000.png", png_bytes())], as_status="published"),
        400,
    ),
    "import as draft without annotator": (
        lambda w: upload(w, images=[("NEWW_000.png", png_bytes())], as_status="draft"),
        400,
    ),
    "export in an unknown format": (lambda w: w.api(w.carol).get("/api/export/?formats=yolo"), 400),
    "mask of a layer that is not a number": (
        lambda w: w.api(w.carol).get(f"/api/images/{w.approved.pk}/mask.png?layer=abc"),
        400,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(case, world):
    make_request, expected = CASES[case]
    world.layer.refresh_from_db()
    before = snapshot()
    response = make_request(world)
    assert response.status_code == expected, response.content[:300]
    body = response.json()
    message = json.dumps(body)
    assert len(message) > 10, "the error says something"
    assert snapshot() == before


def test_an_oversized_upload_is_refused_before_it_is_read(world, settings):
    settings.MAX_UPLOAD_BYTES = 10_000
    before = snapshot()
    response = upload(world, images=[("BIGG_000.png", png_bytes(200, 200))])
    assert response.status_code == 413 and "exceeds the limit" in response.json()["detail"]
    assert snapshot() == before


def test_bad_csv_values_are_reported_and_the_images_still_come_in(world):
    csv = "\ufeffImage;Resolution;Label;Doppler;Marks;Combined\nNEWW_000.png;96x64;Maybe;Si;X;No\n".encode()
    response = upload(world, images=[("NEWW_000.png", png_bytes())], info_csv=("INFO.csv", csv))
    assert response.status_code == 200
    problems = [d["problem"] for d in response.json()["defects"]]
    assert "Label is 'Maybe'" in problems and "Marks is 'X', not Yes/No" in problems
    assert Image.objects.filter(name="NEWW_000.png").exists()


def test_a_cli_import_of_garbage_is_a_clear_error(tmp_path, world):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "JUNK_000.png").write_bytes(b"\x00" * 100)
    before = snapshot()
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing could be imported"):
        call_command("import_dataset", str(tmp_path), stdout=out, stderr=io.StringIO())
    assert "JUNK_000.png: not an image -> skipped" in out.getvalue()
    assert snapshot() == before


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 30


def test_no_orphan_rows_after_the_catalogue(world):
    """Failed imports leave no image without pixels and no pixels without an image."""
    for case in ("non-image upload", "truncated PNG", "decompression bomb"):
        CASES[case][0](world)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM annotator_image i LEFT JOIN annotator_imagedata d ON d.image_id = i.id "
            "WHERE d.image_id IS NULL"
        )
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize(
    "url",
    ["/api/images/?search=a%00b", "/api/images/?status=bogus", "/api/images/?patient=ab%00", "/api/audit/?image=%00"],
)
def test_bad_list_filters_are_a_400_not_a_crash(world, url):
    assert world.api(world.carol).get(url).status_code == 400


def test_bad_dashboard_filters_are_ignored_with_a_message(world):
    from django.test import Client

    client = Client()
    client.force_login(world.carol)
    response = client.get("/dataset/?status=%00&patient=x")
    assert response.status_code == 200 and b"Filter ignored" in response.content
    assert client.get("/dataset/audit/?image=%00").status_code == 200
