"""The base of the bulk management commands (import, export, demo data)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from annotator.bulk import no_query_log


class BulkCommand(BaseCommand):
    """A command whose memory does not grow with ``DEBUG``: no debug query log while it runs."""

    def execute(self, *args, **options):
        with no_query_log():
            return super().execute(*args, **options)
