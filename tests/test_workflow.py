"""annotator.workflow: the transition table, the rules on who, versions, immutability, audit."""

import pytest
from django.db import IntegrityError, transaction

from annotator import workflow
from annotator.models import AuditEvent, Image, LayerStatus, MaskLayer, Review, Status
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from annotator.serializers import LayerContentInput
from tests.factories import SQUARE, TRIANGLE, content, make_image, make_user, submitted_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def users():
    return {
        "alice": make_user("alice", ANNOTATOR),
        "bob": make_user("bob", REVIEWER),
        "carol": make_user("carol", CURATOR),
        "dave": make_user("dave", ANNOTATOR, REVIEWER),
    }


def image_in(status: str, users, name: str = "AAAA_000.png") -> Image:
    """An image brought to ``status`` through the workflow itself."""
    alice, bob = users["alice"], users["bob"]
    image = make_image(name, annotator=alice)
    if status == Status.NEW:
        return image
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)), expected_version=layer.version
    )
    if status != Status.DRAFT:
        workflow.submit(layer_id=layer.pk, user=alice)
        if status == Status.RETURNED:
            workflow.send_back(image_id=image.pk, user=bob, comment="redo")
        elif status == Status.APPROVED:
            workflow.approve(image_id=image.pk, user=bob)
    image.refresh_from_db()
    assert image.status == status
    return image


def run(action: str, image: Image, users):
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    layer = MaskLayer.objects.filter(image=image).order_by("-revision").first()
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
    raise AssertionError(action)


CASES = [(action, status) for action in workflow.TRANSITIONS for status in Status.values]


@pytest.mark.parametrize("action, status", CASES, ids=[f"{a}-from-{s}" for a, s in CASES])
def test_transition_table_is_enforced(action, status, users):
    """Every action succeeds from the statuses the table allows and fails, changing nothing, from the rest."""
    image = image_in(status, users)
    allowed_from, to = workflow.TRANSITIONS[action]
    events_before = AuditEvent.objects.count()
    if action == "start" and status == Status.DRAFT:
        # Reopening one's own draft resumes it: same layer, no transition, no event.
        assert run(action, image, users) == image.layers.get()
        assert AuditEvent.objects.count() == events_before
        return
    if action in ("save_draft", "submit") and not image.layers.exists():
        # A new image has no layer to save or submit: there is nothing to call it on.
        assert status not in allowed_from
        return
    if status in allowed_from:
        run(action, image, users)
        image.refresh_from_db()
        assert image.status == to
        assert AuditEvent.objects.count() == events_before + 1
    else:
        layers_before = list(MaskLayer.objects.filter(image=image).values("id", "status", "version"))
        with pytest.raises(workflow.WorkflowError):
            run(action, image, users)
        image.refresh_from_db()
        assert image.status == status
        assert list(MaskLayer.objects.filter(image=image).values("id", "status", "version")) == layers_before
        assert AuditEvent.objects.count() == events_before


def test_reviewer_cannot_approve_own_annotation(users):
    dave = users["dave"]
    image = submitted_image(dave)
    with pytest.raises(workflow.NotAllowed):
        workflow.approve(image_id=image.pk, user=dave)
    with pytest.raises(workflow.NotAllowed):
        workflow.send_back(image_id=image.pk, user=dave, comment="self")
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_database_refuses_a_self_review_row(users):
    image = submitted_image(users["dave"])
    layer = image.layers.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(
            image=image, layer=layer, reviewer=users["dave"], annotator=users["dave"], decision=Review.Decision.APPROVED
        )


def test_database_allows_one_open_layer_per_image(users):
    image = image_in(Status.DRAFT, users)
    with pytest.raises(IntegrityError), transaction.atomic():
        MaskLayer.objects.create(image=image, author=users["alice"], revision=9, status=LayerStatus.DRAFT)


def test_only_the_assigned_annotator_edits_a_draft(users):
    image = image_in(Status.DRAFT, users)
    layer = image.layers.get()
    other = make_user("erin", ANNOTATOR)
    for intruder in (other, users["bob"], users["carol"]):
        with pytest.raises(workflow.NotAllowed):
            workflow.save_draft(layer_id=layer.pk, user=intruder, content=content(), expected_version=layer.version)
    with pytest.raises(workflow.NotAllowed):
        workflow.start(image_id=image.pk, user=other)


def test_stale_save_is_refused_and_changes_nothing(users):
    alice = users["alice"]
    image = image_in(Status.DRAFT, users)
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


def test_save_bumps_the_version_and_replaces_the_lesions(users):
    alice = users["alice"]
    image = image_in(Status.DRAFT, users)
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


def test_a_submitted_layer_is_immutable(users):
    image = image_in(Status.SUBMITTED, users)
    layer = image.layers.get()
    with pytest.raises(workflow.WorkflowError):
        workflow.save_draft(layer_id=layer.pk, user=users["alice"], content=content(), expected_version=layer.version)
    assert layer.lesions.count() == 1


def test_rework_after_send_back_creates_a_new_revision_from_the_returned_one(users):
    alice = users["alice"]
    image = image_in(Status.RETURNED, users)
    returned = image.layers.get()
    draft = workflow.start(image_id=image.pk, user=alice)
    assert draft.revision == returned.revision + 1 and draft.based_on_id == returned.pk
    assert [les.points for les in draft.lesions.all()] == [les.points for les in returned.lesions.all()]
    returned.refresh_from_db()
    assert returned.status == LayerStatus.RETURNED


def test_the_loop_repeats_until_approval(users):
    alice, bob = users["alice"], users["bob"]
    image = image_in(Status.SUBMITTED, users)
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


def test_edit_and_approve_makes_the_reviewers_layer_the_consensus(users):
    image = image_in(Status.SUBMITTED, users)
    submitted = image.layers.get()
    review = workflow.edit_and_approve(
        image_id=image.pk, user=users["bob"], content=content(("malignant", TRIANGLE), doppler=True)
    )
    image.refresh_from_db()
    assert review.decision == Review.Decision.EDITED_APPROVED
    assert image.consensus.author == users["bob"] and image.consensus.source == MaskLayer.Source.REVIEWER_EDIT
    assert image.consensus.based_on == submitted
    assert image.doppler is True
    submitted.refresh_from_db()
    assert submitted.status == LayerStatus.SUPERSEDED and submitted.lesions.count() == 1


def test_approval_copies_the_flags_to_the_image(users):
    alice = users["alice"]
    image = make_image(annotator=alice)
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=content(is_normal=True, marks=True, combined=True),
        expected_version=layer.version,
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    workflow.approve(image_id=image.pk, user=users["bob"])
    image.refresh_from_db()
    assert (image.doppler, image.marks, image.combined) == (False, True, True)


def test_submit_needs_a_lesion_or_normal(users):
    alice = users["alice"]
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


def test_send_back_needs_a_comment(users):
    image = image_in(Status.SUBMITTED, users)
    with pytest.raises(workflow.InvalidContent):
        workflow.send_back(image_id=image.pk, user=users["bob"], comment="   ")


def test_send_back_keeps_remarks_pinned_to_points_and_lesions(users):
    image = image_in(Status.SUBMITTED, users)
    lesion = image.layers.get().lesions.get()
    review = workflow.send_back(
        image_id=image.pk,
        user=users["bob"],
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


def test_a_remark_on_a_lesion_of_another_layer_is_refused_and_nothing_is_sent_back(users):
    image = image_in(Status.SUBMITTED, users)
    other = image_in(Status.SUBMITTED, users, name="CCCC_000.png")
    foreign = other.layers.get().lesions.get()
    with pytest.raises(workflow.InvalidContent):
        workflow.send_back(
            image_id=image.pk,
            user=users["bob"],
            comment="x",
            remarks=[workflow.RemarkContent(lesion_id=foreign.pk, text="t")],
        )
    image.refresh_from_db()
    assert image.status == Status.SUBMITTED and not Review.objects.exists()


def test_reopen_needs_a_curator_and_a_reason(users):
    image = image_in(Status.APPROVED, users)
    with pytest.raises(workflow.NotAllowed):
        workflow.reopen(image_id=image.pk, user=users["bob"], reason="x")
    with pytest.raises(workflow.InvalidContent):
        workflow.reopen(image_id=image.pk, user=users["carol"], reason="")
    workflow.reopen(image_id=image.pk, user=users["carol"], reason="BI-RADS re-read")
    image.refresh_from_db()
    assert image.status == Status.RETURNED and image.consensus is None
    draft = workflow.start(image_id=image.pk, user=users["alice"])
    assert draft.lesions.count() == 1


def test_an_approved_image_is_locked(users):
    image = image_in(Status.APPROVED, users)
    layer = image.consensus
    with pytest.raises(workflow.WorkflowError):
        workflow.save_draft(layer_id=layer.pk, user=users["alice"], content=content(), expected_version=layer.version)
    with pytest.raises(workflow.InvalidTransition):
        workflow.start(image_id=image.pk, user=users["alice"])


def test_reassigning_a_draft_hands_it_over_without_losing_it(users):
    image = image_in(Status.DRAFT, users)
    erin = make_user("erin", ANNOTATOR)
    workflow.assign(image_ids=[image.pk], annotator=erin, user=users["carol"])
    old, new = image.layers.order_by("revision")
    assert old.status == LayerStatus.SUPERSEDED and new.author == erin and new.status == LayerStatus.DRAFT
    assert new.lesions.count() == 1
    assert workflow.start(image_id=image.pk, user=erin) == new


def test_assign_refuses_non_curators_and_non_annotators(users):
    image = make_image()
    with pytest.raises(workflow.NotAllowed):
        workflow.assign(image_ids=[image.pk], annotator=users["alice"], user=users["alice"])
    with pytest.raises(workflow.InvalidContent):
        workflow.assign(image_ids=[image.pk], annotator=users["bob"], user=users["carol"])


def test_every_transition_is_audited_with_actor_and_statuses(users):
    image = image_in(Status.APPROVED, users)
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


def test_reader_agreement_is_measured_on_approval(users):
    from annotator import selectors

    unchanged = image_in(Status.SUBMITTED, users)
    workflow.approve(image_id=unchanged.pk, user=users["bob"])
    edited = make_image("AAAA_001.png", annotator=users["alice"])
    layer = workflow.start(image_id=edited.pk, user=users["alice"])
    square = [[10, 10], [29, 10], [29, 29], [10, 29]]  # 400 px
    layer = workflow.save_draft(
        layer_id=layer.pk, user=users["alice"], content=content(("benign", square)), expected_version=layer.version
    )
    workflow.submit(layer_id=layer.pk, user=users["alice"])
    half = [[10, 10], [29, 10], [29, 19], [10, 19]]  # its top 200 px
    review = workflow.edit_and_approve(image_id=edited.pk, user=users["bob"], content=content(("benign", half)))
    assert review.dice == round(2 * 200 / (400 + 200), 4)
    assert selectors.agreement() == {
        "approved_unchanged": 1,
        "edited": 1,
        "edited_mean_dice": round(2 * 200 / 600, 3),
        "edited_lowest_dice": review.dice,
        "sent_back": 0,
    }
