"""Worklists, the review queue and the dataset page in real Chromium (issue 9, part 2): thumbnails
(loaded through the permission-checked thumb endpoint), "Image n of m" on the viewer pages, and
dataset links that open the page fitting each image's status. Opening and looking change nothing
in the database, which the test checks.
"""

from __future__ import annotations

import pytest

from annotator import geometry
from annotator.models import AuditEvent, Image
from tests.browser.test_annotation_flow import HEIGHT, WIDTH
from tests.browser.test_move_all import drawn_image
from tests.factories import PASSWORD, alice, bob, carol, image_in, make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SQUARE = [[300.0, 200.0], [420.0, 200.0], [420.0, 300.0], [300.0, 300.0]]


def thumbs_loaded(page) -> list[int]:
    """naturalWidth of every list thumbnail, once all have loaded (0 for a broken one)."""
    page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every((i) => i.complete)")
    return page.eval_on_selector_all("img.thumb", "imgs => imgs.map((i) => i.naturalWidth)")


def test_worklist_and_queue_show_thumbnails_and_the_viewer_says_image_n_of_m(login):
    annotator = alice()
    bob()  # the reviewer who opens the queue
    first = make_image("WORK_000.png", width=WIDTH, height=HEIGHT, annotator=annotator)
    second = make_image("WORK_001.png", width=WIDTH, height=HEIGHT, annotator=annotator)
    submitted = drawn_image("WORK_002.png", annotator, [geometry.Lesion(label="benign", points=SQUARE)], submit=True)
    events = AuditEvent.objects.count()

    page = login("alice", PASSWORD)
    page.goto("/my-images/")
    assert thumbs_loaded(page) == [160, 160]
    page.click("#worklist tr[data-image='WORK_001.png'] a.btn")
    page.wait_for_function("() => window.busPage && window.busPage.ready")
    assert page.text_content("#progress").strip() == "Image 2 of 2"
    page.goto(f"/images/{first.pk}/annotate/")
    assert page.text_content("#progress").strip() == "Image 1 of 2"
    # Looking started nothing.
    assert [Image.objects.get(pk=i.pk).status for i in (first, second)] == ["new", "new"]
    assert AuditEvent.objects.count() == events

    rp = login("bob", PASSWORD)
    rp.goto("/review/")
    assert thumbs_loaded(rp) == [160]
    rp.click("#queue a.btn")
    rp.wait_for_function("() => window.busPage && window.busPage.state === 'ready'")
    assert rp.text_content("#progress").strip() == "Image 1 of 1"
    # The reviewer may not see alice's new images: their thumbnails are refused like their pixels.
    assert rp.request.get(f"/api/images/{first.pk}/thumb.png").status == 404
    assert Image.objects.get(pk=submitted.pk).status == "submitted"
    assert page.js_errors == [] and rp.js_errors == []


def test_dataset_links_open_the_page_for_each_status(login):
    annotator, reviewer, curator = alice(), bob(), carol()
    new = make_image("DSET_000.png", width=WIDTH, height=HEIGHT, annotator=annotator)
    approved = image_in("approved", annotator=annotator, reviewer=reviewer, name="DSET_001.png")
    waiting = image_in("redaction", annotator=annotator, reviewer=curator, name="DSET_002.png")
    cp = login("carol", PASSWORD)
    cp.goto("/dataset/")
    assert thumbs_loaded(cp) == [160, 96, 96]  # the factory's small images stay at their size

    def link(name: str) -> tuple[str, str]:
        a = cp.locator(f"#images tr[data-image='{name}'] a.open-link")
        return a.text_content().strip(), a.get_attribute("href")

    assert link("DSET_000.png") == ("View image", f"/images/{new.pk}/review/")
    assert link("DSET_001.png") == ("View consensus", f"/images/{approved.pk}/review/")
    assert link("DSET_002.png") == ("Redact", "/dataset/redaction/")
    cp.click("#images tr[data-image='DSET_002.png'] a.open-link")
    cp.wait_for_url("**/dataset/redaction/")
    assert cp.locator(f".sheet-item[data-id='{waiting.pk}']").count() == 1
    cp.go_back()
    cp.click("#images tr[data-image='DSET_001.png'] a.open-link")
    cp.wait_for_function("() => window.busPage && window.busPage.state === 'ready'")
    assert cp.evaluate("window.busViewer.readOnly") is True
    assert Image.objects.get(pk=approved.pk).status == "approved"
    assert cp.js_errors == []
