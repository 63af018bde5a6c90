"""python manage.py export_dataset OUT.zip [--format bus-uclm,coco] [--patient CODE ...] [--exclude-doppler ...]"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import CommandError

from annotator import exporting
from annotator.management.base import BulkCommand


class Command(BulkCommand):
    help = "Write the approved (consensus) images as a ZIP in the BUS-UCLM layout, with COCO JSON."

    def add_arguments(self, parser):
        parser.add_argument("out", help="the ZIP file to write")
        parser.add_argument(
            "--format", default="bus-uclm,coco", help=f"comma-separated: {', '.join(exporting.FORMATS)}"
        )
        parser.add_argument("--patient", action="append", default=[], help="only this patient (repeatable)")
        parser.add_argument("--exclude-doppler", action="store_true")
        parser.add_argument("--exclude-marks", action="store_true")
        parser.add_argument("--exclude-combined", action="store_true")

    def handle(self, *args, out, format, patient, exclude_doppler, exclude_marks, exclude_combined, **options):
        formats = [f.strip() for f in format.split(",") if f.strip()]
        unknown = [f for f in formats if f not in exporting.FORMATS]
        if unknown or not formats:
            raise CommandError(
                f"unknown format {', '.join(unknown) or '(none)'}; known: {', '.join(exporting.FORMATS)}"
            )
        options_ = exporting.ExportOptions(
            formats=formats,
            patients=[p.upper() for p in patient],
            exclude_doppler=exclude_doppler,
            exclude_marks=exclude_marks,
            exclude_combined=exclude_combined,
        )
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        # Written under another name and renamed at the end: a crash never leaves a ZIP that looks done.
        try:
            with open(partial, "wb") as fh:
                count = exporting.write_zip(fh, options_, progress=self._progress)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stdout.write(f"exported {count} approved image(s) to {target}")

    def _progress(self, done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            self.stderr.write(f"[{done}/{total}]")
