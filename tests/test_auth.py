"""Logging in: one failed-login counter for the page and the token endpoint, real client addresses,
user names as the account sees them, and tokens that expire and die with a password change."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator.permissions import ANNOTATOR
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    return make_user("alice", ANNOTATOR)


def page_login(username: str, password: str, **headers):
    return Client().post("/accounts/login/", {"username": username, "password": password}, headers=headers)


def token_login(username: str, password: str, **headers):
    return APIClient().post("/api/token/", {"username": username, "password": password}, format="json", headers=headers)


def test_a_forged_forwarded_for_header_does_not_reset_the_token_failure_counter(alice):
    for i in range(3):
        assert token_login("alice", "wrong", x_forwarded_for=f"10.0.0.{i}").status_code == 400
    blocked = token_login("alice", PASSWORD, x_forwarded_for="10.0.0.99")
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_failures" and int(blocked["Retry-After"]) > 0
    assert not Token.objects.exists()


def test_the_token_rate_limit_keys_on_the_real_address_not_the_forwarded_header(alice):
    # 10/min per address; other names each time, so that only the rate limit can refuse.
    codes = [token_login(f"nobody{i}", "wrong", x_forwarded_for=f"10.0.1.{i}").status_code for i in range(11)]
    assert codes[:10] == [400] * 10 and codes[10] == 429


def test_behind_a_trusted_proxy_the_address_the_proxy_saw_is_counted(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(3):
        # The client wrote the left entry; the proxy appended the address it saw.
        assert page_login("alice", "wrong", x_forwarded_for="1.2.3.4, 192.0.2.7").status_code == 200
    assert page_login("alice", PASSWORD, x_forwarded_for="9.9.9.9, 192.0.2.7").status_code == 429
    # Another real client behind the same proxy is not locked out by those failures.
    assert page_login("alice", PASSWORD, x_forwarded_for="192.0.2.8").status_code == 302


def test_failures_on_the_login_page_count_for_the_token_endpoint(alice):
    for _ in range(3):
        assert page_login("alice", "wrong").status_code == 200
    assert token_login("alice", PASSWORD).status_code == 429


def test_failures_on_the_token_endpoint_count_for_the_login_page(alice):
    for _ in range(3):
        assert token_login("alice", "wrong").status_code == 400
    blocked = page_login("alice", PASSWORD)
    assert blocked.status_code == 429 and b"Too many failed attempts" in blocked.content


@pytest.mark.parametrize("variant", [" alice", "alice ", "\uff41\uff4c\uff49\uff43\uff45"])  # fullwidth "alice"
@pytest.mark.parametrize("login", [page_login, token_login])
def test_spelling_variants_of_a_name_share_its_failure_counter(alice, variant, login):
    for _ in range(3):
        assert login(variant, "wrong").status_code in (200, 400)
    assert page_login("alice", PASSWORD).status_code == 429
    assert token_login("alice", PASSWORD).status_code == 429


def test_the_token_endpoint_accepts_the_names_the_login_page_accepts(alice):
    """A fullwidth or space-padded name logs in to the same account on both paths."""
    assert page_login("\uff41\uff4c\uff49\uff43\uff45", PASSWORD).status_code == 302
    response = token_login(" \uff41\uff4c\uff49\uff43\uff45", PASSWORD)
    assert response.status_code == 200 and Token.objects.get(key=response.json()["token"]).user == alice


def test_a_successful_login_clears_the_failures_from_that_address(alice):
    for _ in range(2):
        page_login("alice", "wrong")
    assert page_login("alice", PASSWORD).status_code == 302
    for _ in range(2):
        page_login("alice", "wrong")
    assert token_login("alice", PASSWORD).status_code == 200


def test_an_expired_token_is_refused_and_deleted(alice, settings):
    settings.TOKEN_TTL_HOURS = 12
    key = token_login("alice", PASSWORD).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/whoami/").status_code == 200
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(hours=12, seconds=1))
    refused = api.get("/api/whoami/")
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"
    assert refused["WWW-Authenticate"] == "Token"
    assert not Token.objects.filter(key=key).exists()


def test_a_new_token_replaces_an_expired_one_and_says_when_it_expires(alice):
    old = token_login("alice", PASSWORD).json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(hours=13))
    response = token_login("alice", PASSWORD).json()
    assert response["token"] != old
    token = Token.objects.get(user=alice)
    assert token.key == response["token"] and response["expires"].startswith(str(token.created.year))


def test_setting_a_new_password_revokes_the_users_tokens(alice):
    key = token_login("alice", PASSWORD).json()["token"]
    alice.set_password("another-long-passphrase")
    alice.save()
    assert not Token.objects.filter(key=key).exists()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/whoami/").status_code in (401, 403)  # an unknown token, as before


def test_the_admins_password_change_form_revokes_the_users_tokens(alice):
    key = token_login("alice", PASSWORD).json()["token"]
    admin = make_user("admin", superuser=True)
    client = Client()
    client.force_login(admin)
    new = "another-long-passphrase"
    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/", {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content[:2000]
    alice.refresh_from_db()
    assert alice.check_password(new)
    assert not Token.objects.filter(key=key).exists()


def test_a_password_rehash_at_login_keeps_the_users_tokens(alice, settings):
    """Django re-hashes a password when the hasher's parameters change: that is not a password change."""
    key = token_login("alice", PASSWORD).json()["token"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    assert page_login("alice", PASSWORD).status_code == 302
    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$")
    assert Token.objects.filter(key=key).exists()


@pytest.mark.parametrize("how", ["token", "session"])
def test_the_user_and_their_roles_are_read_in_one_query(how, django_assert_num_queries):
    from annotator.permissions import REVIEWER

    dave = make_user("dave", ANNOTATOR, REVIEWER)
    nobody = make_user("nobody")
    for user, roles in ((dave, ["annotator", "reviewer"]), (nobody, [])):
        client = APIClient()
        if how == "token":
            client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        else:
            client.force_login(user)
        # Session: the session row, then the user with their roles; token: the token, user and roles.
        with django_assert_num_queries(2 if how == "session" else 1):
            answer = client.get("/api/whoami/")
        assert answer.status_code == 200 and sorted(answer.json()["roles"]) == roles
