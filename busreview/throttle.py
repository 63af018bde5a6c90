"""The one failed-login counter, shared by the login page and the token endpoint.

A counter is keyed on the client's real address and on the account the submitted name logs in
to, so that neither a forged X-Forwarded-For header nor a spelling variant of the name (spaces,
fullwidth letters) buys fresh guesses. It lives in PostgreSQL (``LoginFailure``): logging in needs
the database anyway, so the counter adds no way to fail when Redis is down, and neither a restart
nor a cache flush resets it. The key is the pair, not the name alone, so an attacker elsewhere
cannot lock a colleague out and one person's typos behind a shared hospital NAT lock out nobody else.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from busreview.models import LoginFailure

ADDRESS_MAX = 64
USERNAME_MAX = 150


def client_address(request: HttpRequest) -> str:
    """The address the request came from, as far as this server can know it.

    With ``TRUSTED_PROXY_COUNT`` = 0 (no proxy), REMOTE_ADDR and nothing else. Behind n proxies
    that each append to X-Forwarded-For, the n-th entry from the right is the address the
    outermost proxy saw; entries further left were written by the client and prove nothing.
    This is the rule DRF's throttles apply with ``NUM_PROXIES`` (set from the same setting).
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote[:ADDRESS_MAX]
    hops = [hop.strip() for hop in forwarded.split(",")]
    return (hops[-min(proxies, len(hops))] or remote)[:ADDRESS_MAX]


def normalise_username(name: object) -> str:
    """The name as Django's authentication matches it, which is what identifies the account.

    The login form strips surrounding spaces and applies NFKC (``UsernameField``, the same as
    ``AbstractBaseUser.normalize_username`` on save), so " alice" and fullwidth "ａｌｉｃｅ" log in
    to alice; the token endpoint does the same (``busreview.views.TokenLoginSerializer``). ModelBackend
    then matches the stored name exactly, case-sensitively on PostgreSQL: "ALICE" is not alice's
    account (it could be another one), so it is deliberately not case-folded; guesses under it
    can never open alice's account.
    """
    if not isinstance(name, str):
        return ""
    # No account name is this long; the cut bounds the work on a huge form field.
    return get_user_model().normalize_username(name[: USERNAME_MAX * 8].strip())[:USERNAME_MAX]


def _window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)


def blocked_for(request: HttpRequest, username: str) -> int:
    """Seconds until this address may try this name again; 0 if it may now."""
    now = timezone.now()
    row = (
        LoginFailure.objects.filter(
            address=client_address(request),
            username=username,
            first_at__gt=now - _window(),
            failures__gte=settings.LOGIN_FAILURES_ALLOWED,
        )
        .values_list("first_at", flat=True)
        .first()
    )
    if row is None:
        return 0
    return max(1, math.ceil((row + _window() - now).total_seconds()))


def record_failure(request: HttpRequest, username: str) -> int:
    """Count one failed attempt; returns the failures in the current window.

    One upsert, so concurrent failures from several web workers are all counted; a window that
    has run out starts again at 1.
    """
    now = timezone.now()
    expired = now - _window()
    table = LoginFailure._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (address, username, failures, first_at) VALUES (%s, %s, 1, %s)
            ON CONFLICT (address, username) DO UPDATE SET
                failures = CASE WHEN {table}.first_at <= %s THEN 1 ELSE {table}.failures + 1 END,
                first_at = CASE WHEN {table}.first_at <= %s THEN EXCLUDED.first_at ELSE {table}.first_at END
            RETURNING failures
            """,
            [client_address(request), username, now, expired, expired],
        )
        (failures,) = cursor.fetchone()
    # Forget windows that have run out, so the table holds only the last window's failures.
    LoginFailure.objects.filter(first_at__lte=expired).delete()
    return failures


def clear(request: HttpRequest, username: str) -> None:
    """A successful login from this address under this name: its earlier typos no longer count."""
    LoginFailure.objects.filter(address=client_address(request), username=username).delete()
