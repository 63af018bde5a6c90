"""API tokens for scripts: they expire, and a password change revokes them.

A token lives ``TOKEN_TTL_HOURS`` (12 h by default, like the session) from the moment it was
issued; using it does not extend it. An expired token is refused with 401 and deleted, and
``POST /api/token/`` then issues a new one. Changing a user's password deletes their tokens, just
as Django's session auth hash signs out their browser sessions.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.throttling import AnonRateThrottle

from annotator import permissions
from busreview import throttle

log = logging.getLogger(__name__)


def expires_at(token: Token) -> datetime:
    return token.created + timedelta(hours=settings.TOKEN_TTL_HOURS)


def is_expired(token: Token) -> bool:
    return expires_at(token) <= timezone.now()


def issue_token(user) -> Token:
    """The user's token: the current one while it is valid, else a new one."""
    cutoff = timezone.now() - timedelta(hours=settings.TOKEN_TTL_HOURS)
    Token.objects.filter(user=user, created__lte=cutoff).delete()
    return Token.objects.get_or_create(user=user)[0]


class TokenExpired(APIException):
    """401 with ``WWW-Authenticate: Token``, whatever the order of the authentication classes.

    DRF turns an AuthenticationFailed into a 403 when the first authentication class is the
    session's (which has no WWW-Authenticate scheme); a script must be told to get a new token.
    """

    status_code = 401
    default_detail = "Token expired: get a new one from /api/token/."
    default_code = "token_expired"
    auth_header = "Token"  # DRF's exception handler sends it as WWW-Authenticate


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing (and deleting) tokens older than TOKEN_TTL_HOURS.

    The token, its user and the user's roles come in one query (DRF's reads the token and user,
    and the roles would cost a second query on every request)."""

    def authenticate_credentials(self, key: str):
        try:
            token = (
                Token.objects.select_related("user").annotate(user_roles=permissions.role_names("user__")).get(key=key)
            )
        except Token.DoesNotExist:
            raise AuthenticationFailed("Invalid token.") from None
        user = token.user
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        permissions.remember_roles(user, token.user_roles)
        if is_expired(token):
            token.delete()
            raise TokenExpired()
        return user, token


class RolesModelBackend(ModelBackend):
    """Django's model backend, loading a signed-in user's roles in the same query as the user
    (every page and browser API call loads the user from the session)."""

    def get_user(self, user_id):
        user = (
            get_user_model()
            ._default_manager.annotate(busreview_roles=permissions.role_names())
            .filter(pk=user_id)
            .first()
        )
        if user is None or not self.user_can_authenticate(user):
            return None
        permissions.remember_roles(user, user.busreview_roles)
        return user


class RevokeTokensOnPasswordChange:
    """Deletes a user's API tokens when their password changes.

    Written as a password validator because Django calls every validator's ``password_changed()``
    exactly when a password is changed (``set_password()`` then ``save()``: the admin's forms,
    ``changepassword``, scripts), and not when it only re-hashes a password with stronger
    parameters at login, which must not sign anyone out.
    """

    def validate(self, password: str, user=None) -> None:
        return None

    def password_changed(self, password: str, user=None) -> None:
        if user is not None and user.pk is not None:
            deleted, _ = Token.objects.filter(user=user).delete()
            if deleted:
                log.info("password of user %s changed: %s API token(s) revoked", user.pk, deleted)

    def get_help_text(self) -> str:
        return "Changing the password also revokes the user's API tokens."


class LoginRateThrottle(AnonRateThrottle):
    """Requests per minute to the token endpoint from one address (the real one, see throttle.py).

    This rate limit lives in the Redis cache and fails open: with Redis down, a warning is logged
    and the request goes on, still subject to the failed-login counter, which is in PostgreSQL.
    """

    scope = "login"

    def get_ident(self, request) -> str:
        return throttle.client_address(request)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError as e:
            log.warning("login rate limit skipped, the cache is unreachable: %s", type(e).__name__)
            return True
