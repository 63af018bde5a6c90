"""Bulk work without Django's debug query log.

With ``DEBUG`` on, Django keeps the SQL of every query on each connection (up to 9,000 of them),
and an import's INSERTs carry whole PNGs: importing the 683-image BUS-UCLM release grew the
process to 581 MiB instead of 171 MiB. Bulk commands and imports run inside ``no_query_log()``
so their memory does not depend on ``DEBUG``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections


@contextmanager
def no_query_log() -> Iterator[None]:
    """Discard the debug query log of every connection for the duration; restore it afterwards.

    Django appends to ``connection.queries_log`` whenever ``DEBUG`` is on; a zero-length deque
    drops each entry as it comes, without touching ``settings.DEBUG`` (which other code reads).
    """
    saved = []
    for conn in connections.all():
        saved.append((conn, conn.queries_log))
        conn.queries_log = deque(maxlen=0)
    try:
        yield
    finally:
        for conn, log in saved:
            conn.queries_log = log
