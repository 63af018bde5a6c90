"""python manage.py import_dataset PATH [--as draft|submitted|approved] [--annotator USER]
[--frames key|all|1,5,9] [--allow-modality MG ...] [--dataset auto|bus-uclm|busi|breast|bus-bra]

PATH: a folder or ZIP in the BUS-UCLM layout, DICOM files (recognised by content) in a folder or a
ZIP, or one DICOM file; or a public dataset (BUSI, BrEaST-Lesions_USG, BUS-BRA) as published."""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from rest_framework.exceptions import ValidationError

from annotator import importing, permissions
from annotator.management.base import BulkCommand
from annotator.serializers import parse_frames, parse_modalities


class Command(BulkCommand):
    help = (
        "Import a folder or ZIP in the BUS-UCLM layout (images/, optional masks/ and INFO.csv), "
        "and/or DICOM ultrasound files (a folder, a ZIP or one file; recognised by content)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument(
            "--as",
            dest="as_status",
            choices=["draft", "submitted", "approved"],
            default="approved",
            help="status given to images that come with a mask (default: approved)",
        )
        parser.add_argument("--annotator", help="user who is assigned the images (and owns drafts)")
        parser.add_argument("--actor", help="user recorded in the audit log (default: the importer account)")
        parser.add_argument(
            "--frames",
            default="key",
            help="DICOM: which frames become images: key (default: one key frame), all, or 1-based numbers 1,5,9",
        )
        parser.add_argument(
            "--allow-modality",
            dest="allow_modalities",
            action="append",
            default=[],
            help="DICOM: accept this modality besides US (repeatable); refused otherwise",
        )
        parser.add_argument(
            "--dataset",
            choices=importing.DATASET_CHOICES,
            default=importing.AUTO,
            help="the source's layout (default: auto, recognising BUSI, BrEaST and BUS-BRA by their files)",
        )

    def handle(self, *args, path, as_status, annotator, actor, frames, allow_modalities, dataset, **options):
        users = get_user_model().objects
        annotator_user = None
        if annotator:
            annotator_user = users.filter(username=annotator).first()
            if annotator_user is None or not permissions.may_be_assigned(annotator_user):
                raise CommandError(f"{annotator} is not an annotator")
        if as_status == "draft" and annotator_user is None:
            raise CommandError("--as draft needs --annotator: a draft belongs to the annotator who edits it")
        actor_user = users.filter(username=actor).first() if actor else importing.importer_user()
        if actor_user is None:
            raise CommandError(f"no user {actor}")
        try:
            frame_option = parse_frames(frames)
            modalities = parse_modalities(",".join(allow_modalities))
        except ValidationError as e:
            raise CommandError(" ".join(map(str, e.detail))) from None
        options = importing.ImportOptions(
            as_status=as_status,
            annotator=annotator_user,
            frames=frame_option,
            allow_modalities=modalities,
            dataset=dataset,
        )
        try:
            source = importing.folder_source(Path(path))
            if importing.chosen_dataset(source, dataset) is None:
                if not source.images and not source.dicoms:
                    raise importing.ImportRefused(importing.NOTHING_FOUND)
                if source.dicoms:
                    importing.dicom.check_ready(options)
        except importing.ImportRefused as e:
            raise CommandError(str(e)) from None

        def progress(i: int, total: int, name: str) -> None:
            if sys.stderr.isatty():
                sys.stderr.write(f"\r[{i}/{total}] {name}   ")
            elif i == total or i % 50 == 0:
                self.stderr.write(f"[{i}/{total}] {name}")

        try:
            report = importing.import_dataset(source, actor=actor_user, progress=progress, options=options)
        except importing.ImportRefused as e:
            raise CommandError(str(e)) from None
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        for defect in report.defects:
            self.stdout.write(f"DEFECT {defect}")
        for row in report.files:
            self.stdout.write(f"DICOM {row}")
        self.stdout.write(
            f"imported {len(report.imported)}, unchanged {len(report.unchanged)}, failed {len(report.failed)}, "
            f"defects {len(report.defects)}"
        )
        if report.failed and not report.imported and not report.unchanged:
            raise CommandError("nothing could be imported")
