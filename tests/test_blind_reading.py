"""Blind double reading: assignment to two readers, their independent layers, adjudication, and
the union / intersection the adjudicator may start from (annotator.workflow, annotator.adjudication)."""

import threading

import numpy as np
import pytest
from django.db import IntegrityError, connection, transaction

from annotator import adjudication, geometry, permissions, selectors, workflow
from annotator.models import AuditEvent, Image, LayerStatus, MaskLayer, Review, Status
from tests.factories import SQUARE, TRIANGLE, content, make_image, make_user

pytestmark = pytest.mark.django_db


def draw(image, reader, *lesions):
    layer = workflow.start_reading(image_id=image.pk, user=reader)
    return workflow.save_draft(
        layer_id=layer.pk, user=reader, content=content(*lesions), expected_version=layer.version
    )


def events(image):
    return list(
        AuditEvent.objects.filter(image=image)
        .order_by("id")
        .values_list("action", "actor__username", "from_status", "to_status")
    )


def test_two_readers_draw_blind_and_the_second_submit_opens_adjudication(alice, erin, carol):
    image = make_image("DUAL_000.png")
    assert workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=erin, user=carol) == 1
    first = draw(image, alice, ("benign", SQUARE))
    second = draw(image, erin, ("malignant", TRIANGLE))
    assert (first.reader, second.reader) == (1, 2)
    workflow.submit_reading(layer_id=second.pk, user=erin)
    assert Image.objects.get(pk=image.pk).status == Status.DOUBLE_READING
    workflow.submit_reading(layer_id=first.pk, user=alice)
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION
    assert events(image) == [
        ("assign", "carol", "new", "new"),
        ("start_reading", "alice", "new", "double_reading"),
        ("save_draft", "alice", "double_reading", "double_reading"),
        ("start_reading", "erin", "double_reading", "double_reading"),
        ("save_draft", "erin", "double_reading", "double_reading"),
        ("submit_reading", "erin", "double_reading", "double_reading"),
        ("finish_reading", "alice", "double_reading", "adjudication"),
    ]
    assert MaskLayer.objects.get(pk=first.pk).lesions.get().area_px == 31 * 31


def test_a_reader_edits_only_their_own_layer(alice, erin, double_image_in):
    image = double_image_in("double_reading", second_submitted=True)
    mine = image.layers.get(author=alice)
    theirs = image.layers.get(author=erin)
    # The other reader's layer does not exist for her (404), so a save tells her nothing about it.
    with pytest.raises(workflow.NotFound):
        workflow.save_draft(layer_id=mine.pk, user=erin, content=content(), expected_version=mine.version)
    with pytest.raises(workflow.NotAllowed):
        workflow.submit_reading(layer_id=mine.pk, user=erin)
    with pytest.raises(workflow.InvalidTransition):  # submitted: immutable
        workflow.save_draft(layer_id=theirs.pk, user=erin, content=content(), expected_version=theirs.version)
    with pytest.raises(workflow.InvalidTransition):  # hers is in; no second draft while it waits
        workflow.start_reading(image_id=image.pk, user=erin)


def test_the_single_reader_loop_refuses_a_double_reading_and_vice_versa(alice, erin, bob, double_image_in, image_in):
    double = double_image_in("new")
    with pytest.raises(workflow.InvalidTransition):
        workflow.start(image_id=double.pk, user=alice)
    single = image_in("new", "SING_000.png")
    with pytest.raises(workflow.InvalidTransition):
        workflow.start_reading(image_id=single.pk, user=alice)
    draft = image_in("draft", "SING_001.png")
    with pytest.raises(workflow.InvalidTransition):
        workflow.submit_reading(layer_id=draft.layers.get().pk, user=alice)
    assert not double.layers.exists() and not single.layers.exists()


def test_assigning_two_readers_needs_two_different_annotators_and_a_new_image(alice, bob, carol, erin, image_in):
    image = make_image("DUAL_000.png")
    with pytest.raises(workflow.InvalidContent):
        workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=alice, user=carol)
    with pytest.raises(workflow.InvalidContent):
        workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=bob, user=carol)
    with pytest.raises(workflow.InvalidContent):
        workflow.assign(image_ids=[image.pk], annotator=None, second_annotator=erin, user=carol)
    started = image_in("draft", "DRAF_000.png")
    with pytest.raises(workflow.InvalidTransition):
        workflow.assign(image_ids=[image.pk, started.pk], annotator=alice, second_annotator=erin, user=carol)
    image.refresh_from_db()
    assert image.second_annotator is None and image.annotator is None, "nothing assigned"


def test_a_new_double_reading_goes_back_to_one_reader_but_a_started_one_does_not(alice, carol, erin, double_image_in):
    new = double_image_in("new")
    workflow.assign(image_ids=[new.pk], annotator=erin, user=carol)
    new.refresh_from_db()
    assert (new.annotator, new.second_annotator) == (erin, None)
    started = double_image_in("double_reading", "DUAL_001.png")
    with pytest.raises(workflow.InvalidTransition):
        workflow.assign(image_ids=[started.pk], annotator=alice, user=carol)
    started.refresh_from_db()
    assert started.second_annotator == erin


def test_the_database_refuses_one_reader_twice_and_an_adjudicator_who_read(alice, erin, dave, double_image_in):
    image = double_image_in("adjudication")
    with pytest.raises(IntegrityError), transaction.atomic():
        Image.objects.filter(pk=image.pk).update(second_annotator=alice)
    layer = image.layers.get(author=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(
            image=image, layer=layer, reviewer=erin, annotator=alice, other_reader=erin, decision="adjudicated"
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # each reader has one open layer
        MaskLayer.objects.create(image=image, author=alice, revision=99, reader=1, status=LayerStatus.DRAFT)


def test_the_adjudicator_is_a_reviewer_who_is_neither_reader(alice, bob, carol, dave):
    """dave annotates and reviews: as the second reader he may not adjudicate, even before drawing."""
    image = make_image("DUAL_000.png")
    workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=dave, user=carol)
    assert permissions.can(dave, permissions.REVIEW, image) is False
    draw(image, alice, ("benign", SQUARE))
    mine = draw(image, dave, ("benign", TRIANGLE))
    workflow.submit_reading(layer_id=mine.pk, user=dave)
    workflow.submit_reading(layer_id=image.layers.get(author=alice).pk, user=alice)
    image.refresh_from_db()
    assert image.status == Status.ADJUDICATION
    assert image not in selectors.review_queue(dave) and image in selectors.review_queue(bob)
    for decide in (
        lambda: workflow.adjudicate(image_id=image.pk, user=dave, layer_id=mine.pk),
        lambda: workflow.adjudicate_edit(image_id=image.pk, user=dave, content=content(), start_from="union"),
        lambda: workflow.return_reading(image_id=image.pk, user=dave, layer_ids=[mine.pk], comment="x"),
        lambda: workflow.adjudicate(image_id=image.pk, user=carol, layer_id=mine.pk),
    ):
        with pytest.raises(workflow.NotAllowed):
            decide()
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION and not Review.objects.exists()


def test_approving_one_reading_makes_it_the_consensus_with_a_review_per_reader(alice, erin, bob, double_image_in):
    image = double_image_in("adjudication")
    chosen, other = image.layers.get(author=erin), image.layers.get(author=alice)
    reviews = workflow.adjudicate(image_id=image.pk, user=bob, layer_id=chosen.pk, comment="erin's margin")
    image.refresh_from_db()
    assert image.status == Status.APPROVED and image.consensus == chosen
    other.refresh_from_db()
    assert other.status == LayerStatus.SUPERSEDED
    by_layer = {r.layer_id: r for r in reviews}
    assert by_layer[chosen.pk].dice == 1.0
    # alice's 31 x 31 px square against erin's 36 x 31, overlapping by 16 x 21 px (pixels inclusive).
    assert by_layer[other.pk].dice == round(2 * 16 * 21 / (31 * 31 + 36 * 31), 4)
    assert Review.objects.get(pk=by_layer[other.pk].pk).dice == by_layer[other.pk].dice
    assert {(r.annotator, r.other_reader, r.decision) for r in reviews} == {
        (erin, alice, Review.Decision.ADJUDICATED),
        (alice, erin, Review.Decision.ADJUDICATED),
    }
    event = AuditEvent.objects.filter(image=image).order_by("-id").first()
    assert (event.action, event.from_status, event.to_status, event.layer_id) == (
        "adjudicate",
        "adjudication",
        "approved",
        chosen.pk,
    )


def test_a_layer_that_is_not_one_of_the_readings_is_refused(bob, double_image_in, image_in):
    image = double_image_in("adjudication")
    foreign = image_in("submitted", "SUBM_000.png").layers.get()
    with pytest.raises(workflow.InvalidContent):
        workflow.adjudicate(image_id=image.pk, user=bob, layer_id=foreign.pk)
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION


@pytest.mark.parametrize("start_from", ["alice", "union", "intersection"])
def test_the_adjudicators_edit_is_a_new_layer_and_the_consensus(start_from, alice, erin, bob, double_image_in):
    image = double_image_in("adjudication")
    readings = list(image.layers.order_by("reader"))
    first = readings[0].geometry_lesions()
    second = readings[1].geometry_lesions()
    if start_from == "alice":
        start, lesions = readings[0].pk, first
    else:
        start, lesions = start_from, adjudication.combine(first, second, image.width, image.height, start_from).lesions
    edited = [geometry.Lesion(label=geometry.MALIGNANT, points=les.points, holes=les.holes) for les in lesions]
    workflow.adjudicate_edit(
        image_id=image.pk, user=bob, content=workflow.LayerContent(lesions=edited), start_from=start
    )
    image.refresh_from_db()
    consensus = image.consensus
    assert (image.status, consensus.author, consensus.source) == (Status.APPROVED, bob, MaskLayer.Source.REVIEWER_EDIT)
    assert consensus.based_on_id == (readings[0].pk if start_from == "alice" else None)
    assert [les.label for les in consensus.lesions.all()] == ["malignant"] * len(edited)
    assert set(image.layers.filter(reader__in=[1, 2]).exclude(pk=consensus.pk).values_list("status", flat=True)) == {
        LayerStatus.SUPERSEDED
    }
    assert Review.objects.filter(image=image, decision=Review.Decision.ADJUDICATED).count() == 2
    event = AuditEvent.objects.filter(image=image).order_by("-id").first()
    assert (event.action, event.detail["start_from"]) == ("adjudicate_edit", start)


def test_a_returned_reader_reworks_their_own_layer_and_the_other_reading_waits(alice, erin, bob, double_image_in):
    image = double_image_in("adjudication")
    mine, theirs = image.layers.get(author=alice), image.layers.get(author=erin)
    workflow.return_reading(image_id=image.pk, user=bob, layer_ids=[mine.pk], comment="include the rim")
    image.refresh_from_db()
    assert image.status == Status.DOUBLE_READING
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (LayerStatus.RETURNED, LayerStatus.SUBMITTED)
    assert image in selectors.worklist(alice) and image not in selectors.worklist(erin)
    rework = workflow.start_reading(image_id=image.pk, user=alice)
    assert rework.based_on_id == mine.pk and rework.reader == 1
    assert [les.points for les in rework.lesions.all()] == [les.points for les in mine.lesions.all()]
    workflow.submit_reading(layer_id=rework.pk, user=alice)
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION
    review = Review.objects.get(image=image)
    assert (review.decision, review.layer, review.comment) == ("returned", mine, "include the rim")


def test_both_readings_may_go_back_and_a_comment_is_needed(alice, erin, bob, double_image_in):
    image = double_image_in("adjudication")
    ids = list(image.layers.values_list("pk", flat=True))
    with pytest.raises(workflow.InvalidContent):
        workflow.return_reading(image_id=image.pk, user=bob, layer_ids=ids, comment=" ")
    workflow.return_reading(image_id=image.pk, user=bob, layer_ids=ids, comment="both redo")
    assert set(image.layers.values_list("status", flat=True)) == {LayerStatus.RETURNED}
    assert Review.objects.filter(image=image, decision="returned").count() == 2
    event = AuditEvent.objects.filter(image=image).order_by("-id").first()
    assert (event.action, sorted(event.detail["layers"])) == ("return_reading", sorted(ids))
    assert image in selectors.worklist(alice) and image in selectors.worklist(erin)


def test_a_reopened_double_reading_is_reworked_by_its_first_reader_from_the_consensus(
    alice, erin, bob, carol, double_image_in
):
    image = double_image_in("adjudication")
    chosen = image.layers.get(author=erin)
    workflow.adjudicate(image_id=image.pk, user=bob, layer_id=chosen.pk)
    workflow.reopen(image_id=image.pk, user=carol, reason="second look")
    image.refresh_from_db()
    assert (image.status, image.second_annotator) == (Status.RETURNED, None)
    draft = workflow.start(image_id=image.pk, user=alice)
    assert draft.based_on_id == chosen.pk and draft.reader == 1


@pytest.mark.django_db(transaction=True)
def test_both_readers_submitting_at_once_give_exactly_one_adjudication(monkeypatch):
    """Both submits reach the image lock together (a barrier holds them there): the lock makes one
    of them the first and the other the second, so the image goes to adjudication exactly once."""
    from tests import factories

    alice, erin, carol = factories.alice(), factories.erin(), factories.carol()
    image = make_image("DUAL_000.png")
    workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=erin, user=carol)
    layers = {alice: draw(image, alice, ("benign", SQUARE)), erin: draw(image, erin, ("malignant", TRIANGLE))}
    barrier = threading.Barrier(2, timeout=30)
    original = workflow._lock_for_layer

    def meet_then_lock(layer_id):
        barrier.wait()
        return original(layer_id)

    monkeypatch.setattr(workflow, "_lock_for_layer", meet_then_lock)
    errors = []

    def submit(user) -> None:
        try:
            workflow.submit_reading(layer_id=layers[user].pk, user=user)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(u,)) for u in (alice, erin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION
    actions = list(
        AuditEvent.objects.filter(image=image, action__in=["submit_reading", "finish_reading"]).values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["finish_reading", "submit_reading"]


# --- union and intersection: masks combined, traced back to valid outlines -----------------------

W, H = 96, 64


def _mask(lesions):
    return geometry.rasterise(lesions, W, H)


def _lesions(*rings, label=geometry.BENIGN, holes=()):
    return [geometry.Lesion(label=label, points=[list(map(float, p)) for p in r], holes=list(holes)) for r in rings]


@pytest.mark.parametrize("operation", adjudication.OPERATIONS)
def test_union_and_intersection_are_exact_masks_traced_to_valid_outlines(operation):
    rng = np.random.default_rng(7)
    for _ in range(40):
        first, second = [], []
        for layer in (first, second):
            for _ in range(rng.integers(1, 4)):
                x, y = rng.integers(2, W - 30), rng.integers(2, H - 25)
                w, h = rng.integers(6, 28), rng.integers(6, 22)
                label = geometry.MALIGNANT if rng.random() < 0.3 else geometry.BENIGN
                holes = []
                if w > 12 and h > 12 and rng.random() < 0.5:
                    holes = [[[x + 4, y + 4], [x + 8, y + 4], [x + 8, y + 8], [x + 4, y + 8]]]
                ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
                layer.append(geometry.Lesion(label=label, points=ring, holes=holes))
        result = adjudication.combine(first, second, W, H, operation)
        planes_a, _ = geometry.colour_planes(_mask(first))
        planes_b, _ = geometry.colour_planes(_mask(second))
        a = planes_a["benign"] | planes_a["malignant"]
        b = planes_b["benign"] | planes_b["malignant"]
        expected = (a | b) if operation == "union" else (a & b)
        got = _mask(result.lesions).any(axis=-1)
        # Every pixel of the combination is painted, except components too thin to outline.
        assert (got & ~expected).sum() == 0
        assert (expected & ~got).sum() == 0 or result.dropped_specks > 0
        raw = [{"label": les.label, "points": les.points, "holes": les.holes} for les in result.lesions]
        assert geometry.validate_lesions(raw, W, H) == result.lesions


def test_union_of_two_overlapping_squares_is_one_lesion_and_malignant_wins():
    a = _lesions([[10, 10], [30, 10], [30, 30], [10, 30]])
    b = _lesions([[20, 20], [40, 20], [40, 40], [20, 40]], label=geometry.MALIGNANT)
    union = adjudication.combine(a, b, W, H, "union").lesions
    inter = adjudication.combine(a, b, W, H, "intersection").lesions
    assert [les.label for les in inter] == ["malignant"]
    assert geometry.pixel_area(inter[0], W, H) == 11 * 11
    # The malignant square is painted whole; the benign rest of the first square is its own lesion.
    assert sorted(les.label for les in union) == ["benign", "malignant"]
    assert _mask(union).any(axis=-1).sum() == 2 * 21 * 21 - 11 * 11


def test_intersection_of_disjoint_layers_is_empty():
    a = _lesions([[5, 5], [15, 5], [15, 15], [5, 15]])
    b = _lesions([[50, 30], [60, 30], [60, 40], [50, 40]])
    assert adjudication.combine(a, b, W, H, "intersection").lesions == []
    with pytest.raises(ValueError):
        adjudication.combine(a, b, W, H, "xor")


def test_a_user_with_no_role_is_not_a_reader():
    nobody = make_user("nobody")
    image = make_image("DUAL_000.png")
    assert permissions.is_reader(nobody, image) is False


# --- over the API ---------------------------------------------------------------------------------


def _client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.raise_request_exception = False
    client.force_authenticate(user)
    return client


def test_the_combined_endpoint_gives_what_adjudication_combine_gives_and_stores_nothing(bob, double_image_in):
    image = double_image_in("adjudication")
    first, second = (layer.geometry_lesions() for layer in image.layers.order_by("reader"))
    layers_before = MaskLayer.objects.count()
    for operation in adjudication.OPERATIONS:
        body = _client(bob).get(f"/api/images/{image.pk}/combined/?operation={operation}").json()
        expected = adjudication.combine(first, second, image.width, image.height, operation)
        assert [(les["label"], les["points"], les["holes"]) for les in body["lesions"]] == [
            (les.label, les.points, les.holes) for les in expected.lesions
        ]
        assert body["lesions"], operation  # the two readings overlap
    assert MaskLayer.objects.count() == layers_before
    assert _client(bob).get(f"/api/images/{image.pk}/combined/?operation=xor").status_code == 400


def test_adjudicating_over_the_api_from_the_union(bob, double_image_in):
    image = double_image_in("adjudication")
    union = _client(bob).get(f"/api/images/{image.pk}/combined/?operation=union").json()["lesions"]
    response = _client(bob).post(
        f"/api/images/{image.pk}/adjudicate-edit/",
        {"start_from": "union", "layer": {"lesions": union, "doppler": True}, "comment": "both margins"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert [r["decision"] for r in response.json()] == ["adjudicated", "adjudicated"]
    image.refresh_from_db()
    assert image.status == Status.APPROVED and image.doppler is True
    assert [les.points for les in image.consensus.lesions.all()] == [les["points"] for les in union]


@pytest.mark.parametrize(
    "path, body, code",
    [
        ("adjudicate/", {"layer": "x"}, 400),
        ("adjudicate/", {"layer": 999999}, 400),  # not one of the two readings
        ("adjudicate-edit/", {"start_from": "xor", "layer": {"is_normal": True}}, 400),
        (
            "adjudicate-edit/",
            {"start_from": "union", "layer": {"lesions": [{"label": "benign", "points": [[0, 0]]}]}},
            400,
        ),
        ("adjudicate-edit/", {"start_from": "union", "layer": {}}, 400),  # nothing drawn
        ("return-reading/", {"layers": [], "comment": "x"}, 400),
        ("return-reading/", {"layers": ["reading"], "comment": " "}, 400),
    ],
)
def test_bad_adjudication_input_is_a_400_and_changes_nothing(bob, double_image_in, path, body, code):
    image = double_image_in("adjudication")
    if body.get("layers") == ["reading"]:
        body["layers"] = [image.layers.first().pk]
    events = AuditEvent.objects.count()
    response = _client(bob).post(f"/api/images/{image.pk}/{path}", body, format="json")
    assert response.status_code == code, response.content
    assert response.json()  # says what was wrong: a field's message, or {code, detail} from the workflow
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION
    assert AuditEvent.objects.count() == events and not Review.objects.exists()


def test_deciding_twice_is_a_409(bob, double_image_in):
    image = double_image_in("adjudication")
    layer = image.layers.first()
    assert (
        _client(bob).post(f"/api/images/{image.pk}/adjudicate/", {"layer": layer.pk}, format="json").status_code == 200
    )
    again = _client(bob).post(f"/api/images/{image.pk}/adjudicate/", {"layer": layer.pk}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_the_assign_api_and_page_take_a_second_reader(alice, carol, erin):
    from django.test import Client

    one, two = make_image("DUAL_000.png"), make_image("DUAL_001.png")
    body = {"images": [one.pk], "annotator": "alice", "second_annotator": "erin"}
    assert _client(carol).post("/api/assign/", body, format="json").json() == {"assigned": 1}
    same = {"images": [one.pk], "annotator": "alice", "second_annotator": "alice"}
    assert _client(carol).post("/api/assign/", same, format="json").status_code == 400
    page = Client()
    page.force_login(carol)
    page.post("/dataset/assign/", {"images": [two.pk], "annotator": "erin", "second_annotator": "alice"})
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.annotator, one.second_annotator) == (alice, erin)
    assert (two.annotator, two.second_annotator) == (erin, alice)


def test_pages_name_both_readers_in_the_queue_and_the_audit_log(alice, bob, carol, erin, double_image_in):
    from django.test import Client

    image = double_image_in("adjudication")
    client = Client()
    client.force_login(bob)
    row = client.get("/review/").content.decode()
    assert image.name in row and "alice + erin" in row
    client.force_login(carol)
    audit = client.get(f"/dataset/audit/?image={image.name}").content.decode()
    assert "from nobody to alice, and erin, read blind" in audit
    assert "finish_reading" in audit
