"""Test settings: the real settings, with a fast password hasher (PBKDF2 would dominate the suite)."""

import os

from busreview.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = "busreview-tests"  # noqa: F405
# Tests use their own Redis database for the job queue, so a running dev worker never takes their jobs
# (RQ_TEST_REDIS_DB lets two checkouts run their suites side by side).
_RQ_DB = os.getenv("RQ_TEST_REDIS_DB", "15")
RQ_QUEUES = {"default": {"URL": REDIS_URL.rsplit("/", 1)[0] + "/" + _RQ_DB, "DEFAULT_TIMEOUT": 600}}  # noqa: F405
# Searched during the import, so tests see the boxes at once (tests/test_text_search.py runs the queue).
TEXT_SEARCH_INLINE = True
