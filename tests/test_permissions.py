"""annotator.permissions: the role x action table, one generated test per cell, and list filtering."""

import pytest

from annotator import permissions
from annotator.models import Image, Status
from annotator.permissions import ACTIONS, ADMIN, ANNOTATOR, CURATOR, REVIEWER, ROLE_ACTIONS
from tests.factories import make_image, make_user, submitted_image

pytestmark = pytest.mark.django_db

ROLE_USERS = {ANNOTATOR: (ANNOTATOR,), REVIEWER: (REVIEWER,), CURATOR: (CURATOR,), ADMIN: (), "none": ()}
CELLS = [(role, action) for role in ROLE_USERS for action in ACTIONS]


def user_with(role: str):
    return make_user(f"u-{role}", *ROLE_USERS[role], superuser=role == ADMIN)


@pytest.mark.parametrize("role, action", CELLS, ids=[f"{r}-{a}" for r, a in CELLS])
def test_role_action_matrix(role, action):
    expected = action in ROLE_ACTIONS.get(role, frozenset())
    assert permissions.can(user_with(role), action) is expected


def test_an_inactive_user_may_do_nothing():
    user = make_user("gone", CURATOR)
    user.is_active = False
    user.save()
    assert not any(permissions.can(user, a) for a in ACTIONS)


def test_a_person_may_hold_several_roles():
    dave = make_user("dave", ANNOTATOR, REVIEWER)
    assert permissions.can(dave, permissions.ANNOTATE) and permissions.can(dave, permissions.REVIEW)
    assert not permissions.can(dave, permissions.EXPORT)


def test_lists_follow_the_same_rules_as_details():
    alice = make_user("alice", ANNOTATOR)
    dave = make_user("dave", ANNOTATOR, REVIEWER)
    bob = make_user("bob", REVIEWER)
    carol = make_user("carol", CURATOR)
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
