"""No identifying header value of an imported DICOM file reaches the database, the export or the logs.

Synthetic files carry known identifying strings in every place they hide (tests.dicom_samples:
names, IDs, dates, institution, physicians, nested sequences, private tags, OtherPatientIDs, free
text). They are imported by the command and by the API, released through the redaction step,
annotated and approved, exported; then a pg_dump of the whole database, every member of the export
ZIP, the command's output, the API's answers and every captured log record are searched for each
string.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import re
import shutil
import subprocess
import zipfile

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from annotator import exporting, workflow
from annotator.models import Image, Status
from tests.dicom_samples import IDENTIFYING, PATIENT_ID, bare_bytes, region, to_bytes, us_dataset
from tests.factories import SQUARE, content
from tests.test_dicom_import import REGION, scan_pixels

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump reads committed rows only


def pg_dump_binary() -> str:
    found = shutil.which("pg_dump") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))), None)
    if not found:
        pytest.fail("pg_dump not found (install postgresql-client)")
    return found


def dump_database() -> str:
    db = connection.settings_dict
    command = [pg_dump_binary(), "--no-owner", "-h", db["HOST"] or "127.0.0.1", "-U", db["USER"] or "postgres"]
    if db["PORT"]:
        command += ["-p", str(db["PORT"])]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    result = subprocess.run([*command, db["NAME"]], capture_output=True, env=env, timeout=120, check=True)
    return result.stdout.decode("utf-8", errors="replace")


def planted_in(text: str) -> list[str]:
    """The identifying strings found in ``text`` as whole tokens (a short date such as "1943" is not
    "found" inside a hex-encoded PNG or a longer number)."""
    found = []
    for planted in IDENTIFYING:
        pattern = r"(?<![0-9A-Za-z])" + re.escape(planted) + r"(?![0-9A-Za-z])"
        if re.search(pattern, text, flags=re.IGNORECASE):
            found.append(planted)
    return found


def planted_file(*, sop_uid: str, bare: bool = False, without_id: bool = False) -> bytes:
    ds = us_dataset(scan_pixels())
    ds.SequenceOfUltrasoundRegions[0] = region(*REGION, 0.01, 0.02)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    if without_id:
        del ds.PatientID  # identity from name and birth date instead
    return bare_bytes(ds) if bare else to_bytes(ds)


def test_no_planted_identifying_string_reaches_the_database_the_export_or_the_logs(
    tmp_path, caplog, settings, carol, alice, bob
):
    settings.PATIENT_KEY_SECRET = "test-secret-of-at-least-16-bytes"
    caplog.set_level(logging.DEBUG)
    logging.getLogger("annotator.importing").info("capture check")  # the capture works at all
    root = tmp_path / "in"
    root.mkdir()
    (root / "one.dcm").write_bytes(planted_file(sop_uid="1.2.826.0.1.3680043.2.1125.1"))
    (root / "two").write_bytes(planted_file(sop_uid="1.2.826.0.1.3680043.2.1125.2", bare=True))
    (root / "three.dcm").write_bytes(planted_file(sop_uid="1.2.826.0.1.3680043.2.1125.3", without_id=True))
    out = io.StringIO()
    call_command("import_dataset", str(root), "--annotator", "alice", stdout=out, stderr=io.StringIO())
    client = APIClient()
    client.force_authenticate(carol)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("four.dcm", planted_file(sop_uid="1.2.826.0.1.3680043.2.1125.4"))
        zf.writestr("one-again.dcm", (root / "one.dcm").read_bytes())
    buf.seek(0)
    buf.name = "upload.zip"
    api_answer = client.post("/api/import/", {"archive": buf, "annotator": "alice"}, format="multipart")
    assert api_answer.status_code == 200 and api_answer.json()["imported"] == 1
    images = list(Image.objects.order_by("pk"))
    assert len(images) == 4 and {im.status for im in images} == {Status.REDACTION}
    assert len({im.patient_id for im in images}) == 2  # the same PatientID twice, and name + birth date

    # Release, annotate and approve every image, so the export holds them all.
    for image in images:
        answer = client.post(
            f"/api/images/{image.pk}/redact/", {"boxes": [{"x": 0, "y": 0, "w": 8, "h": 8}]}, format="json"
        )
        assert answer.status_code == 200
        workflow.assign(image_ids=[image.pk], annotator=alice, user=carol)
        layer = workflow.start(image_id=image.pk, user=alice)
        layer = workflow.save_draft(
            layer_id=layer.pk,
            user=alice,
            content=content(("benign", SQUARE)),
            expected_version=layer.version,
        )
        workflow.submit(layer_id=layer.pk, user=alice)
        workflow.approve(image_id=image.pk, user=bob)
    export = b"".join(exporting.iter_zip(exporting.ExportOptions()))
    with zipfile.ZipFile(io.BytesIO(export)) as zf:
        members = {name: zf.read(name).decode("latin-1") for name in zf.namelist()}
    assert sum(name.startswith("images/") for name in members) == 4

    dump = dump_database()
    assert images[0].name in dump and "annotator_patientkey" in dump  # the dump is of this database
    assert not planted_in(dump), "in the pg_dump"
    for name, text in members.items():
        assert not planted_in(text), f"in the export's {name}"
    assert not planted_in(out.getvalue()), "in the command's output"
    assert not planted_in(api_answer.content.decode()), "in the API's answer"
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "capture check" in logged and not planted_in(logged), "in the logs"
    # and the check itself finds what is there
    assert planted_in(f"x {PATIENT_ID} y") == [PATIENT_ID]
