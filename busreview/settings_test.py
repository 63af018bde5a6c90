"""Test settings: the real settings, with a fast password hasher (PBKDF2 would dominate the suite)."""

from busreview.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = "busreview-tests"  # noqa: F405
