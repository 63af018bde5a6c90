"""Site-wide records that belong to no app: the failed-login counter."""

from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """Failed logins of one user name from one address, in the window opened by the first failure.

    Kept in PostgreSQL, not in the Redis cache: logging in needs the database anyway, so the
    counter adds no new way to fail, survives restarts and cache flushes, and is shared by every
    web server (see busreview/throttle.py).
    """

    address = models.CharField(max_length=64)
    username = models.CharField(max_length=150)
    failures = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address", "username"], name="one_login_counter_per_key")]

    def __str__(self) -> str:
        return f"{self.failures} failed login(s) for {self.username!r} from {self.address}"
