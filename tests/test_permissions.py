"""annotator.permissions: the role x action table, one generated test per cell, and list filtering."""

import pytest
from django.contrib.auth.models import AnonymousUser

from annotator import permissions, workflow
from annotator.models import Image, Review, Status
from tests.factories import SELF_REVIEW_WORLDS, SQUARE, content, make_image, make_user, submitted_image

pytestmark = pytest.mark.django_db

Y, N = True, False
# Who may do what, written out by hand rather than read from permissions.ROLE_ACTIONS, so that a
# wrong change to that table fails here. Each row is a named user from tests/conftest.py.
# fmt: off
ACTIONS = ("view", "annotate", "review", "import", "assign", "export", "reopen", "audit", "redact", "agreement", "configure", "api_docs")  # noqa: E501
EXPECTED = {
    #                             view annotate review import assign export reopen audit redact agreement configure api_docs  # noqa: E501
    "alice (annotator)":          (Y,   Y,       N,     N,     N,     N,     N,     N,    N,     Y,        N,        N),
    "bob (reviewer)":             (Y,   N,       Y,     N,     N,     N,     N,     N,    N,     Y,        N,        N),
    "carol (curator)":            (Y,   N,       N,     Y,     Y,     Y,     Y,     Y,    Y,     Y,        Y,        Y),
    "admin (superuser)":          (Y,   N,       N,     Y,     Y,     Y,     Y,     Y,    Y,     Y,        Y,        Y),
    "dave (annotator+reviewer)":  (Y,   Y,       Y,     N,     N,     N,     N,     N,    N,     Y,        N,        N),
    "nobody (no role)":           (N,   N,       N,     N,     N,     N,     N,     N,    N,     N,        N,        N),
    "anonymous":                  (N,   N,       N,     N,     N,     N,     N,     N,    N,     N,        N,        N),
}
# fmt: on
CELLS = [(who, action, allowed) for who, row in EXPECTED.items() for action, allowed in zip(ACTIONS, row, strict=True)]


@pytest.fixture
def user_named(request):
    """user_named("bob (reviewer)") -> the user of that row, from the shared fixtures."""

    def get(who: str):
        name = who.split(" ")[0]
        if name == "anonymous":
            return AnonymousUser()
        if name == "nobody":
            return make_user("nobody")
        return request.getfixturevalue(name)

    return get


def test_the_expected_table_covers_every_action():
    """A new action cannot go untested: the table above must grow with it."""
    assert set(ACTIONS) == set(permissions.ACTIONS)


@pytest.mark.parametrize("who, action, allowed", CELLS, ids=[f"{w.split()[0]}-{a}" for w, a, _ in CELLS])
def test_role_action_matrix(who, action, allowed, user_named):
    assert permissions.can(user_named(who), action) is allowed


def test_an_inactive_user_may_do_nothing(carol):
    carol.is_active = False
    carol.save()
    assert not any(permissions.can(carol, a) for a in ACTIONS)


def test_lists_follow_the_same_rules_as_details(alice, bob, carol, dave):
    mine_new = make_image("AAAA_000.png", annotator=alice)
    unassigned = make_image("AAAA_001.png")
    alice_submitted = submitted_image(alice, "AAAA_002.png")
    dave_submitted = submitted_image(dave, "BBBB_000.png")
    everything = set(Image.objects.all())
    expected = {
        alice: {mine_new, alice_submitted},
        bob: {alice_submitted, dave_submitted},
        dave: {alice_submitted, dave_submitted},  # his own as annotator; alice's as reviewer
        carol: everything,
    }
    for user, visible in expected.items():
        listed = set(permissions.restrict(Image.objects.all(), user, permissions.VIEW))
        assert listed == visible, user.username
        for image in everything:
            assert permissions.can(user, permissions.VIEW, image) is (image in visible)
    assert set(permissions.restrict(Image.objects.all(), dave, permissions.REVIEW)) == {alice_submitted}
    assert set(permissions.restrict(Image.objects.all(), bob, permissions.REVIEW)) == {alice_submitted, dave_submitted}
    assert not permissions.restrict(Image.objects.all(), carol, permissions.REVIEW).exists()
    assert unassigned.status == Status.NEW


# --- no review of one's own work, whatever the layer's source -----------------------------------

AUTHORED = [
    pytest.param("drawn", id="drawn"),
    pytest.param("imported", id="imported"),
    pytest.param("reviewer_edit", id="reviewer_edit"),
]


@pytest.mark.parametrize("source", AUTHORED)
def test_a_reviewer_may_not_review_an_image_with_a_layer_they_authored(source, alice, bob, carol, dave):
    """dave (annotator and reviewer) authored a layer of alice's submitted image: he may not decide on it."""
    image = SELF_REVIEW_WORLDS[source](alice=alice, carol=carol, dave=dave)
    assert image.layers.filter(author=dave, source=source).exists()
    assert (image.status, image.annotator) == (Status.SUBMITTED, alice)
    assert permissions.can(dave, permissions.REVIEW, image) is False
    assert image not in permissions.restrict(Image.objects.all(), dave, permissions.REVIEW)
    assert image in permissions.restrict(Image.objects.all(), bob, permissions.REVIEW)
    reviews = Review.objects.count()
    for decide in (
        lambda: workflow.approve(image_id=image.pk, user=dave),
        lambda: workflow.send_back(image_id=image.pk, user=dave, comment="mine"),
        lambda: workflow.edit_and_approve(image_id=image.pk, user=dave, content=content(("benign", SQUARE))),
    ):
        with pytest.raises(workflow.NotAllowed):
            decide()
    image.refresh_from_db()
    assert image.status == Status.SUBMITTED and Review.objects.count() == reviews


# --- blind double reading: neither reader sees the other's layer before the consensus -------------

# Which reader's layer each user sees, on an image read blind by alice (reader 1) and erin (reader 2),
# bob adjudicating; written out by hand. None: the user does not see the image at all.
# fmt: off
BLIND = {
    #                                   alice's layer  erin's layer
    ("double_reading", "alice"):       (Y,            N),
    ("double_reading", "erin"):        (N,            Y),
    ("double_reading", "bob"):         None,   # no reviewer sees an image while it is being read
    ("double_reading", "carol"):       (Y,            Y),
    ("adjudication", "alice"):         (Y,            N),
    ("adjudication", "erin"):          (N,            Y),
    ("adjudication", "bob"):           (Y,            Y),
    ("adjudication", "carol"):         (Y,            Y),
    ("approved", "alice"):             (Y,            Y),
    ("approved", "erin"):              (Y,            Y),
    ("approved", "bob"):               (Y,            Y),
}
# fmt: on


@pytest.mark.parametrize("status, who", list(BLIND), ids=[f"{s}-{w}" for s, w in BLIND])
def test_readers_never_see_each_others_layer_before_the_consensus(status, who, double_image_in, request):
    image = double_image_in(status, second_submitted=True)
    user = request.getfixturevalue(who)
    layers = [image.layers.filter(author__username=name).order_by("-revision").first() for name in ("alice", "erin")]
    listed = set(permissions.restrict_layers(image.layers.all(), user))
    if BLIND[(status, who)] is None:
        assert permissions.can(user, permissions.VIEW, image) is False and listed == set()
        return
    for layer, expected in zip(layers, BLIND[(status, who)], strict=True):
        assert permissions.may_see_layer(user, layer) is expected
        assert (layer in listed) is expected


def test_a_reader_who_also_reviews_sees_the_image_in_adjudication_but_not_the_other_layer(alice, bob, carol, dave):
    """dave (annotator and reviewer) is the second reader: as a reviewer he views images in
    adjudication, but neither alice's layer nor the review of it, and he may not adjudicate."""
    image = make_image("DUAL_000.png")
    workflow.assign(image_ids=[image.pk], annotator=alice, second_annotator=dave, user=carol)
    for reader, lesion in ((alice, SQUARE), (dave, SQUARE)):
        layer = workflow.start_reading(image_id=image.pk, user=reader)
        workflow.save_draft(
            layer_id=layer.pk, user=reader, content=content(("benign", lesion)), expected_version=layer.version
        )
        workflow.submit_reading(layer_id=layer.pk, user=reader)
    image.refresh_from_db()
    alices = image.layers.get(author=alice)
    workflow.return_reading(image_id=image.pk, user=bob, layer_ids=[alices.pk], comment="alice: the rim")
    workflow.start_reading(image_id=image.pk, user=alice)
    image.refresh_from_db()
    assert permissions.can(dave, permissions.VIEW, image) is True  # his own image as reader
    assert set(permissions.restrict_layers(image.layers.all(), dave)) == set(image.layers.filter(author=dave))
    assert not permissions.restrict_reviews(Review.objects.all(), dave).exists()
    assert permissions.restrict_reviews(Review.objects.all(), alice).count() == 1
    assert permissions.can(dave, permissions.REVIEW, image) is False


# Which page a list opens for each status and person (permissions.page_for), written out by hand.
# The images are alice's; bob reviews; dave holds both reader roles but draws none of these.
# Columns: new, draft, submitted, returned, approved, redaction; each cell "page: link text".
PAGE_FOR = {
    "alice": (
        "annotate: Start",
        "annotate: Open",
        "view: View submission",
        "annotate: Open",
        "view: View consensus",
        "view: View drawing",
    ),
    "bob": (
        "view: View image",
        "view: View drawing",
        "review: Review",
        "view: View drawing",
        "view: View consensus",
        "view: View drawing",
    ),
    "dave": (
        "view: View image",
        "view: View drawing",
        "review: Review",
        "view: View drawing",
        "view: View consensus",
        "view: View drawing",
    ),
    "carol": (
        "view: View image",
        "view: View drawing",
        "view: View submission",
        "view: View drawing",
        "view: View consensus",
        "redaction: Redact",
    ),
    "admin": (
        "view: View image",
        "view: View drawing",
        "view: View submission",
        "view: View drawing",
        "view: View consensus",
        "redaction: Redact",
    ),
}
PAGE_STATUSES = ("new", "draft", "submitted", "returned", "approved", "redaction")


@pytest.mark.parametrize("who", list(PAGE_FOR))
def test_a_list_opens_the_page_that_fits_the_image_status(who, image_in, request, dave, carol, admin):
    user = request.getfixturevalue(who)
    for k, status in enumerate(PAGE_STATUSES):
        image = image_in(status, name=f"PAGE_{k:03d}.png")
        assert (status, ": ".join(permissions.page_for(user, image))) == (status, PAGE_FOR[who][k])


# fmt: off
DOUBLE_PAGE_FOR = {
    #           double_reading            adjudication
    "alice":  ("annotate: Open",         "view: View readings"),   # reader 1
    "erin":   ("annotate: Open",         "view: View readings"),   # reader 2
    "bob":    (None,                     "review: Adjudicate"),    # no reviewer sees an image being read
    "carol":  ("view: View drawing",     "view: View readings"),
}
# fmt: on


@pytest.mark.parametrize("who", list(DOUBLE_PAGE_FOR))
def test_a_list_opens_the_page_that_fits_a_blind_read_image(who, double_image_in, request):
    user = request.getfixturevalue(who)
    for k, (status, expected) in enumerate(zip(("double_reading", "adjudication"), DOUBLE_PAGE_FOR[who], strict=True)):
        image = double_image_in(status, name=f"DUAL_{k:03d}.png", second_submitted=True)
        if expected is None:
            assert not permissions.can(user, permissions.VIEW, image)
            continue
        assert (status, ": ".join(permissions.page_for(user, image))) == (status, expected)
