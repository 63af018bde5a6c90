"""Recompute the stored reader agreement of every approval (after a change to annotator.agreement)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from annotator import agreement_records


class Command(BaseCommand):
    help = "Recompute the stored agreement (Dice, IoU, HD95, ASSD, lesion matching) of every approved review."

    def handle(self, *args, **options) -> None:
        n = agreement_records.recompute_all()
        self.stdout.write(f"recomputed the agreement of {n} approval(s)")
