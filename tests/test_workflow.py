"""annotator.workflow: the transition table, the rules on who, versions, immutability, audit."""

import re

import pytest
from django.db import IntegrityError, transaction

from annotator import workflow
from annotator.models import AuditEvent, Image, LayerStatus, Lesion, MaskLayer, Review, Status
from annotator.serializers import LayerContentInput
from tests.factories import SQUARE, TRIANGLE, content, make_image, submitted_image

pytestmark = pytest.mark.django_db

REFUSED = "refused"  # a WorkflowError, and nothing changes (a reviewer does not even see new or draft images)
RESUMED = "resumed"  # start on one's own draft returns that draft: no transition, no event
NO_LAYER = "no layer"  # a new image has no layer to save or submit: there is nothing to call it on

# What each action does from each status, written out by hand rather than read from
# workflow.TRANSITIONS, so that a wrong change to that table fails here. A status is where the
# image ends up after the action succeeds.
STATUSES = ("redaction", "new", "draft", "submitted", "returned", "approved", "double_reading", "adjudication")
# Blind double reading: its actions run on an image read by alice and erin (bob adjudicates) in
# every status it can be in; single-reading actions on such an image in double_reading and adjudication.
DOUBLE_ACTIONS = {
    "start_reading",
    "submit_reading",
    "finish_reading",
    "adjudicate",
    "adjudicate_edit",
    "return_reading",
}
DR, ADJ = "double_reading", "adjudication"
# fmt: off
EXPECTED = {
    #                     redaction  new       draft        submitted   returned   approved    double_r. adjudication
    "confirm_redaction": ("new",    REFUSED,  REFUSED,     REFUSED,    REFUSED,   REFUSED,    REFUSED,  REFUSED),
    "start":             (REFUSED,  "draft",  RESUMED,     REFUSED,    "draft",   REFUSED,    REFUSED,  REFUSED),
    "save_draft":        (NO_LAYER, NO_LAYER, "draft",     REFUSED,    REFUSED,   REFUSED,    DR,       REFUSED),
    "submit":            (NO_LAYER, NO_LAYER, "submitted", REFUSED,    REFUSED,   REFUSED,    REFUSED,  REFUSED),
    "approve":           (REFUSED,  REFUSED,  REFUSED,     "approved", REFUSED,   REFUSED,    REFUSED,  REFUSED),
    "edit_and_approve":  (REFUSED,  REFUSED,  REFUSED,     "approved", REFUSED,   REFUSED,    REFUSED,  REFUSED),
    "send_back":         (REFUSED,  REFUSED,  REFUSED,     "returned", REFUSED,   REFUSED,    REFUSED,  REFUSED),
    "reopen":            (REFUSED,  REFUSED,  REFUSED,     REFUSED,    REFUSED,   "returned", REFUSED,  REFUSED),
    "start_reading":     (REFUSED,  DR,       REFUSED,     REFUSED,    REFUSED,   REFUSED,    DR,       REFUSED),
    "submit_reading":    (NO_LAYER, NO_LAYER, REFUSED,     REFUSED,    REFUSED,   REFUSED,    DR,       REFUSED),
    "finish_reading":    (NO_LAYER, NO_LAYER, REFUSED,     REFUSED,    REFUSED,   REFUSED,    ADJ,      REFUSED),
    "adjudicate":        (REFUSED,  REFUSED,  REFUSED,     REFUSED,    REFUSED,   REFUSED,    REFUSED,  "approved"),
    "adjudicate_edit":   (REFUSED,  REFUSED,  REFUSED,     REFUSED,    REFUSED,   REFUSED,    REFUSED,  "approved"),
    "return_reading":    (REFUSED,  REFUSED,  REFUSED,     REFUSED,    REFUSED,   REFUSED,    REFUSED,  DR),
}
# fmt: on
CASES = [
    (action, status, outcome) for action, row in EXPECTED.items() for status, outcome in zip(STATUSES, row, strict=True)
]


def world(action: str, status: str, image_in, double_image_in) -> Image:
    """The image to try ``action`` on: read blind for the double-reading statuses, and for the
    double-reading actions wherever a double reading can be (finish_reading: erin submitted first)."""
    if status in (DR, ADJ) or (action in DOUBLE_ACTIONS and status not in ("draft", "submitted", "returned")):
        return double_image_in(status, second_submitted=action == "finish_reading")
    return image_in(status)


def run(action: str, image: Image, alice, bob, carol, erin=None):
    """``action`` on ``image`` by the user entitled to it (so only the status can refuse it)."""
    layer = MaskLayer.objects.filter(image=image, author=alice).order_by("-revision").first()
    if action == "start_reading":  # erin, the second reader, who has not started in any world
        return workflow.start_reading(image_id=image.pk, user=erin)
    if action in ("submit_reading", "finish_reading"):  # which one is the workflow's choice
        return workflow.submit_reading(layer_id=layer.pk, user=alice)
    if action == "adjudicate":
        return workflow.adjudicate(image_id=image.pk, user=bob, layer_id=layer.pk if layer else 0)
    if action == "adjudicate_edit":
        return workflow.adjudicate_edit(
            image_id=image.pk, user=bob, content=content(("benign", TRIANGLE)), start_from="union"
        )
    if action == "return_reading":
        return workflow.return_reading(
            image_id=image.pk, user=bob, layer_ids=[layer.pk if layer else 0], comment="redo"
        )
    if action == "start":
        return workflow.start(image_id=image.pk, user=alice)
    if action == "save_draft":
        return workflow.save_draft(
            layer_id=layer.pk, user=alice, content=content(("malignant", TRIANGLE)), expected_version=layer.version
        )
    if action == "submit":
        return workflow.submit(layer_id=layer.pk, user=alice)
    if action == "approve":
        return workflow.approve(image_id=image.pk, user=bob)
    if action == "edit_and_approve":
        return workflow.edit_and_approve(image_id=image.pk, user=bob, content=content(("benign", TRIANGLE)))
    if action == "send_back":
        return workflow.send_back(image_id=image.pk, user=bob, comment="not yet")
    if action == "reopen":
        return workflow.reopen(image_id=image.pk, user=carol, reason="new guideline")
    if action == "confirm_redaction":
        return workflow.confirm_redaction(image_id=image.pk, user=carol, boxes=[])
    raise AssertionError(action)


def test_the_expected_table_covers_every_action_and_status():
    """A new action or status cannot go untested: the table above must grow with it."""
    assert set(EXPECTED) == set(workflow.TRANSITIONS)
    assert set(STATUSES) == set(Status.values)


@pytest.mark.parametrize("action, status, outcome", CASES, ids=[f"{a}-from-{s}" for a, s, _ in CASES])
def test_transition_table_is_enforced(action, status, outcome, image_in, double_image_in, alice, bob, carol, erin):
    """Every action leads where the table says from the statuses it allows, and changes nothing from the rest."""
    image = world(action, status, image_in, double_image_in)
    layers_before = list(MaskLayer.objects.filter(image=image).order_by("id").values("id", "status", "version"))
    events_before = AuditEvent.objects.count()
    if outcome == NO_LAYER:
        assert not image.layers.exists()
        return
    if outcome == RESUMED:
        assert run(action, image, alice, bob, carol, erin) == image.layers.get()
        image.refresh_from_db()
        assert image.status == status
        assert AuditEvent.objects.count() == events_before
        return
    if outcome == REFUSED:
        with pytest.raises(workflow.WorkflowError):
            run(action, image, alice, bob, carol, erin)
        image.refresh_from_db()
        assert image.status == status
        assert list(MaskLayer.objects.filter(image=image).order_by("id").values("id", "status", "version")) == (
            layers_before
        )
        assert AuditEvent.objects.count() == events_before
        return
    run(action, image, alice, bob, carol, erin)
    image.refresh_from_db()
    assert image.status == outcome
    assert AuditEvent.objects.count() == events_before + 1
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.from_status, event.to_status) == (action, status, outcome)


def test_reviewer_cannot_approve_own_annotation(dave):
    image = submitted_image(dave)
    with pytest.raises(workflow.NotAllowed):
        workflow.approve(image_id=image.pk, user=dave)
    with pytest.raises(workflow.NotAllowed):
        workflow.send_back(image_id=image.pk, user=dave, comment="self")
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_database_refuses_a_self_review_row(dave):
    image = submitted_image(dave)
    layer = image.layers.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(
            image=image, layer=layer, reviewer=dave, annotator=dave, decision=Review.Decision.APPROVED
        )


def test_database_allows_one_open_layer_per_image(alice, image_in):
    image = image_in(Status.DRAFT)
    with pytest.raises(IntegrityError), transaction.atomic():
        MaskLayer.objects.create(image=image, author=alice, revision=9, status=LayerStatus.DRAFT)


def test_only_the_assigned_annotator_edits_a_draft(bob, carol, erin, image_in):
    image = image_in(Status.DRAFT)
    layer = image.layers.get()
    other = erin
    # Those who cannot even see the draft are told it does not exist; the curator sees it.
    for intruder, refusal in ((other, workflow.NotFound), (bob, workflow.NotFound), (carol, workflow.NotAllowed)):
        with pytest.raises(refusal):
            workflow.save_draft(layer_id=layer.pk, user=intruder, content=content(), expected_version=layer.version)
    with pytest.raises(workflow.NotAllowed):
        workflow.start(image_id=image.pk, user=other)


def test_stale_save_is_refused_and_changes_nothing(alice, image_in):
    image = image_in(Status.DRAFT)
    layer = image.layers.get()
    current = layer.version
    with pytest.raises(workflow.StaleVersion) as e:
        workflow.save_draft(
            layer_id=layer.pk, user=alice, content=content(("malignant", TRIANGLE)), expected_version=current - 1
        )
    assert e.value.http_status == 409 and e.value.extra["version"] == current
    layer.refresh_from_db()
    assert layer.version == current
    assert [les.label for les in layer.lesions.all()] == ["benign"]


def test_save_bumps_the_version_and_replaces_the_lesions(alice, image_in):
    image = image_in(Status.DRAFT)
    layer = image.layers.get()
    saved = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(("malignant", TRIANGLE), ("benign", SQUARE)),
        expected_version=layer.version,
    )
    assert saved.version == layer.version + 1
    assert [(les.label, les.points) for les in saved.lesions.order_by("index")] == [
        ("malignant", [list(map(float, p)) for p in TRIANGLE]),
        ("benign", [list(map(float, p)) for p in SQUARE]),
    ]
    # Areas are counted when the layer stops changing, not on every autosave.
    assert saved.lesions.get(index=1).area_px is None
    workflow.submit(layer_id=layer.pk, user=alice)
    assert saved.lesions.get(index=1).area_px == 31 * 31


def test_saves_rewrite_lesions_in_place_grow_and_shrink(alice, image_in):
    image = image_in(Status.DRAFT)
    layer = image.layers.get()
    first = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)), expected_version=layer.version
    )
    kept_id = first.lesions.get(index=0).pk
    grown = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(("malignant", TRIANGLE), ("benign", SQUARE), ("benign", TRIANGLE)),
        expected_version=first.version,
    )
    stored = list(Lesion.objects.filter(layer=layer).order_by("index").values_list("id", "index", "label", "points"))
    # Lesion 0 keeps its row (updated in place); 1 and 2 are new rows; the answer lists the stored ids.
    assert [row[:3] for row in stored] == [
        (kept_id, 0, "malignant"),
        (stored[1][0], 1, "benign"),
        (stored[2][0], 2, "benign"),
    ]
    assert stored[0][3] == [list(map(float, p)) for p in TRIANGLE]
    assert [les.pk for les in grown.lesions.all()] == [row[0] for row in stored]
    shrunk = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)), expected_version=grown.version
    )
    assert list(Lesion.objects.filter(layer=layer).values_list("id", "index", "label")) == [(kept_id, 0, "benign")]
    emptied = workflow.save_draft(layer_id=layer.pk, user=alice, content=content(), expected_version=shrunk.version)
    assert not Lesion.objects.filter(layer=layer).exists() and list(emptied.lesions.all()) == []


def test_the_lesion_write_sets_every_lesion_column():
    # A column the in-place UPDATE did not set would keep the previous save's value; read from the
    # statement itself. id, layer and index name the row and are not rewritten.
    set_list = re.search(r"\bSET (.*?)\s+FROM v\b", workflow._WRITE_LESIONS_SQL, re.S).group(1)
    assigned = {part.split("=")[0].strip() for part in set_list.split(",")}
    columns = {f.column for f in Lesion._meta.concrete_fields} - {"id", "layer_id", "index"}
    assert assigned == columns


def test_the_saves_locking_read_gives_the_layer_and_image_the_orm_gives(image_in):
    # The save reads its layer and image with one hand-written statement; every column it reads
    # must come back as the ORM would load it (types, time zones), and the image's JSON columns,
    # left out, still load when touched.
    image = image_in(Status.DRAFT)
    Image.objects.filter(pk=image.pk).update(pixel_spacing_mm=0.064, source_metadata={"k": "v"})
    orm = MaskLayer.objects.select_related("image").get(image=image)
    with transaction.atomic():
        raw = workflow._lock_layer_with_image(orm.pk)
    for field in MaskLayer._meta.concrete_fields:
        assert getattr(raw, field.attname) == getattr(orm, field.attname), field.name
    for field in Image._meta.concrete_fields:
        assert getattr(raw.image, field.attname) == getattr(orm.image, field.attname), field.name
    assert raw.image.source_metadata == {"k": "v"}
    with transaction.atomic():
        assert workflow._lock_layer_with_image(10**12) is None


def test_a_submitted_layer_is_immutable(alice, image_in):
    image = image_in(Status.SUBMITTED)
    layer = image.layers.get()
    with pytest.raises(workflow.WorkflowError):
        workflow.save_draft(layer_id=layer.pk, user=alice, content=content(), expected_version=layer.version)
    assert layer.lesions.count() == 1


def test_rework_after_send_back_creates_a_new_revision_from_the_returned_one(alice, image_in):
    image = image_in(Status.RETURNED)
    returned = image.layers.get()
    draft = workflow.start(image_id=image.pk, user=alice)
    assert draft.revision == returned.revision + 1 and draft.based_on_id == returned.pk
    assert [les.points for les in draft.lesions.all()] == [les.points for les in returned.lesions.all()]
    returned.refresh_from_db()
    assert returned.status == LayerStatus.RETURNED


def test_the_loop_repeats_until_approval(alice, bob, image_in):
    image = image_in(Status.SUBMITTED)
    for round_ in range(3):
        workflow.send_back(image_id=image.pk, user=bob, comment=f"round {round_}")
        layer = workflow.start(image_id=image.pk, user=alice)
        layer = workflow.save_draft(
            layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)), expected_version=layer.version
        )
        workflow.submit(layer_id=layer.pk, user=alice)
    workflow.approve(image_id=image.pk, user=bob)
    image.refresh_from_db()
    assert image.status == Status.APPROVED
    assert image.consensus.revision == 4
    assert list(image.reviews.values_list("decision", flat=True)) == ["returned"] * 3 + ["approved"]
    assert image.layers.count() == 4, "every layer ever submitted is kept"


def test_edit_and_approve_makes_the_reviewers_layer_the_consensus(bob, image_in):
    image = image_in(Status.SUBMITTED)
    submitted = image.layers.get()
    review = workflow.edit_and_approve(
        image_id=image.pk, user=bob, content=content(("malignant", TRIANGLE), doppler=True)
    )
    image.refresh_from_db()
    assert review.decision == Review.Decision.EDITED_APPROVED
    assert image.consensus.author == bob and image.consensus.source == MaskLayer.Source.REVIEWER_EDIT
    assert image.consensus.based_on == submitted
    assert image.doppler is True
    submitted.refresh_from_db()
    assert submitted.status == LayerStatus.SUPERSEDED and submitted.lesions.count() == 1


def test_approval_copies_the_flags_to_the_image(alice, bob):
    image = make_image(annotator=alice)
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(is_normal=True, marks=True, combined=True),
        expected_version=layer.version,
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    workflow.approve(image_id=image.pk, user=bob)
    image.refresh_from_db()
    assert (image.doppler, image.marks, image.combined) == (False, True, True)


def test_submit_needs_a_lesion_or_normal(alice):
    image = make_image(annotator=alice)
    layer = workflow.start(image_id=image.pk, user=alice)
    with pytest.raises(workflow.InvalidContent):
        workflow.submit(layer_id=layer.pk, user=alice)
    assert Image.objects.get(pk=image.pk).status == Status.DRAFT


def test_normal_with_lesions_is_refused():
    image = Image(width=100, height=100)
    data = {"is_normal": True, "lesions": [{"label": "benign", "points": SQUARE}]}
    with pytest.raises(workflow.InvalidContent):
        LayerContentInput(data=data, context={"image": image}).is_valid()


def test_send_back_needs_a_comment(bob, image_in):
    image = image_in(Status.SUBMITTED)
    with pytest.raises(workflow.InvalidContent):
        workflow.send_back(image_id=image.pk, user=bob, comment="   ")


def test_send_back_keeps_remarks_pinned_to_points_and_lesions(bob, image_in):
    image = image_in(Status.SUBMITTED)
    lesion = image.layers.get().lesions.get()
    review = workflow.send_back(
        image_id=image.pk,
        user=bob,
        comment="see pins",
        remarks=[
            workflow.RemarkContent(x=12, y=20, text="margin"),
            workflow.RemarkContent(lesion_id=lesion.pk, text="label?"),
        ],
    )
    assert list(review.remarks.values_list("x", "y", "lesion", "text")) == [
        (12.0, 20.0, None, "margin"),
        (None, None, lesion.pk, "label?"),
    ]


def test_a_remark_on_a_lesion_of_another_layer_is_refused_and_nothing_is_sent_back(bob, image_in):
    image = image_in(Status.SUBMITTED)
    other = image_in(Status.SUBMITTED, "CCCC_000.png")
    foreign = other.layers.get().lesions.get()
    with pytest.raises(workflow.InvalidContent):
        workflow.send_back(
            image_id=image.pk,
            user=bob,
            comment="x",
            remarks=[workflow.RemarkContent(lesion_id=foreign.pk, text="t")],
        )
    image.refresh_from_db()
    assert image.status == Status.SUBMITTED and not Review.objects.exists()


def test_reopen_needs_a_curator_and_a_reason(alice, bob, carol, image_in):
    image = image_in(Status.APPROVED)
    with pytest.raises(workflow.NotAllowed):
        workflow.reopen(image_id=image.pk, user=bob, reason="x")
    with pytest.raises(workflow.InvalidContent):
        workflow.reopen(image_id=image.pk, user=carol, reason="")
    workflow.reopen(image_id=image.pk, user=carol, reason="BI-RADS re-read")
    image.refresh_from_db()
    assert image.status == Status.RETURNED and image.consensus is None
    draft = workflow.start(image_id=image.pk, user=alice)
    assert draft.lesions.count() == 1


def test_an_approved_image_is_locked(alice, image_in):
    image = image_in(Status.APPROVED)
    layer = image.consensus
    with pytest.raises(workflow.WorkflowError):
        workflow.save_draft(layer_id=layer.pk, user=alice, content=content(), expected_version=layer.version)
    with pytest.raises(workflow.InvalidTransition):
        workflow.start(image_id=image.pk, user=alice)


def test_reassigning_a_draft_hands_it_over_without_losing_it(carol, erin, image_in):
    image = image_in(Status.DRAFT)
    workflow.assign(image_ids=[image.pk], annotator=erin, user=carol)
    old, new = image.layers.order_by("revision")
    assert old.status == LayerStatus.SUPERSEDED and new.author == erin and new.status == LayerStatus.DRAFT
    assert new.lesions.count() == 1
    assert workflow.start(image_id=image.pk, user=erin) == new


def test_assign_refuses_non_curators_and_non_annotators(alice, bob, carol):
    image = make_image()
    with pytest.raises(workflow.NotAllowed):
        workflow.assign(image_ids=[image.pk], annotator=alice, user=alice)
    with pytest.raises(workflow.InvalidContent):
        workflow.assign(image_ids=[image.pk], annotator=bob, user=carol)


def test_every_transition_is_audited_with_actor_and_statuses(alice, bob, image_in):
    image = image_in(Status.APPROVED)
    events = list(
        AuditEvent.objects.filter(image=image)
        .order_by("id")
        .values_list("action", "actor__username", "from_status", "to_status")
    )
    assert events == [
        ("start", "alice", "new", "draft"),
        ("save_draft", "alice", "draft", "draft"),
        ("submit", "alice", "draft", "submitted"),
        ("approve", "bob", "submitted", "approved"),
    ]


def test_reader_agreement_is_measured_on_approval(alice, bob, image_in):
    from annotator import selectors

    unchanged = image_in(Status.SUBMITTED)
    workflow.approve(image_id=unchanged.pk, user=bob)
    edited = make_image("AAAA_001.png", annotator=alice)
    layer = workflow.start(image_id=edited.pk, user=alice)
    square = [[10, 10], [29, 10], [29, 29], [10, 29]]  # 400 px
    layer = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("benign", square)), expected_version=layer.version
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    half = [[10, 10], [29, 10], [29, 19], [10, 19]]  # its top 200 px
    review = workflow.edit_and_approve(image_id=edited.pk, user=bob, content=content(("benign", half)))
    assert review.dice == round(2 * 200 / (400 + 200), 4)
    assert selectors.agreement() == {
        "approved_unchanged": 1,
        "edited": 1,
        "edited_mean_dice": round(2 * 200 / 600, 3),
        "edited_lowest_dice": review.dice,
        "sent_back": 0,
    }
