"""The curator in real Chromium: import, assign, the whole loop, and the export download read back."""

from __future__ import annotations

import io
import json
import zipfile

import django_rq
import numpy as np
import PIL.Image
import pytest
from rq import SimpleWorker

from annotator import geometry, workflow
from annotator.models import Image, Status
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, make_user, png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRIANGLE = [[20, 10], [80, 12], [50, 55]]


def upload_zip(tmp_path) -> str:
    path = tmp_path / "dataset.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images/EXPO_000.png", png_bytes(96, 64, seed=3))
        zf.writestr("images/EXPO_001.png", png_bytes(96, 64, seed=4))
        zf.writestr("readme.txt", b"not an image")
    return str(path)


def read_zip(download) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read()))


def test_curator_imports_assigns_and_downloads_the_consensus(login, tmp_path):
    make_user("carol", CURATOR)
    alice = make_user("alice", ANNOTATOR)
    bob = make_user("bob", REVIEWER)

    # Import from the browser: the report lists the defect, the images arrive as new.
    page = login("carol", PASSWORD)
    page.goto("/dataset/import/")
    page.set_input_files("input[name=archive]", upload_zip(tmp_path))
    page.click("#import-form [type=submit]")
    report = page.locator("#import-report")
    report.wait_for()
    assert "2" in report.locator("strong").first.inner_text()
    assert "not a PNG image or INFO.csv" in report.inner_text()
    assert set(Image.objects.values_list("status", flat=True)) == {Status.NEW}

    # Assign the patient to alice from the dashboard.
    page.goto("/dataset/")
    row = page.locator("#patient-counts tr", has_text="EXPO")
    row.locator("select[name=annotator]").select_option("alice")
    row.locator("button").click()
    page.wait_for_selector(".messages")
    assert set(Image.objects.values_list("annotator__username", flat=True)) == {"alice"}

    # The loop for one image, through the workflow (the drawing pages have their own tests).
    image = Image.objects.get(name="EXPO_000.png")
    layer = workflow.start(image_id=image.pk, user=alice)
    drawn = geometry.Lesion(label="malignant", points=[list(map(float, p)) for p in TRIANGLE])
    layer = workflow.save_draft(
        layer_id=layer.pk,
        user=alice,
        content=workflow.LayerContent(lesions=[drawn], doppler=True),
        expected_version=layer.version,
    )
    workflow.submit(layer_id=layer.pk, user=alice)
    workflow.approve(image_id=image.pk, user=bob)

    # Streamed download from the export page.
    page.goto("/dataset/export/")
    with page.expect_download() as info:
        page.click("#download")
    with read_zip(info.value) as zf:
        check_export(zf, drawn)

    # Background export: a real RQ worker (Redis) runs it while the page polls the progress.
    queue = django_rq.get_queue("default")
    queue.empty()
    page.click("#start-job")
    wait_until(lambda: queue.count, what="the job to be queued")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)  # the live server keeps serving
    page.reload()  # the job survives a reload: its state lives on the server
    link = page.locator("a.download-job").first
    link.wait_for(timeout=15_000)
    with page.expect_download() as info:
        link.click()
    with read_zip(info.value) as zf:
        check_export(zf, drawn)
    assert page.js_errors == []


def check_export(zf: zipfile.ZipFile, drawn: geometry.Lesion) -> None:
    assert sorted(zf.namelist()) == [
        "INFO.csv",
        "agreement.csv",  # every format is checked on the page, ``agreement`` included
        "agreement_lesions.csv",
        "annotations/instances.json",
        "images/EXPO_000.png",
        "lesions.csv",  # the export page ticks every registered format, issue 11's included
        "masks/EXPO_000.png",
        "splits.csv",
    ]
    lesions = zf.read("lesions.csv").decode("utf-8-sig").splitlines()
    assert len(lesions) == 2 and lesions[1].startswith("EXPO_000.png;1;malignant;")
    mask = np.asarray(PIL.Image.open(io.BytesIO(zf.read("masks/EXPO_000.png"))))
    assert mask.shape == (64, 96, 3)
    expected = geometry.lesion_mask(drawn, 96, 64).astype(bool)
    assert np.all(mask[expected] == (255, 0, 0)) and np.all(mask[~expected] == 0)
    assert zf.read("INFO.csv").decode("utf-8-sig").splitlines() == [
        "Image;Resolution;Label;Doppler;Marks;Combined",
        "EXPO_000.png;96x64;Malignant;Yes;No;No",
    ]
    coco = json.loads(zf.read("annotations/instances.json"))
    assert coco["images"] == [{"id": 1, "file_name": "EXPO_000.png", "width": 96, "height": 64}]
    assert coco["annotations"][0]["category_id"] == 2 and coco["annotations"][0]["area"] == int(expected.sum())
