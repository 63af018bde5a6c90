"""The curator imports a public dataset's ZIP from the import page in real Chromium, the layout
chosen in the page's select; what was stored is checked in the database."""

from __future__ import annotations

import pytest

from annotator.models import Image, Status
from annotator.permissions import CURATOR
from tests.factories import PASSWORD, make_user
from tests.test_public_datasets import breast, lesions_of, zipped

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_curator_imports_a_breast_zip_with_the_layout_chosen_on_the_page(login, tmp_path):
    make_user("carol", CURATOR)
    archive = tmp_path / "breast.zip"
    archive.write_bytes(zipped(breast(tmp_path / "breast")).getvalue())
    page = login("carol", PASSWORD)
    page.goto("/dataset/import/")
    page.select_option("#import-dataset", "breast")
    page.set_input_files("input[name=archive]", str(archive))
    page.click("#import-form [type=submit]")
    report = page.locator("#import-report")
    report.wait_for()
    assert report.locator("strong").first.inner_text() == "5"
    text = report.inner_text()
    assert "Shape 'lobulated' has no BI-RADS lexicon value" in text
    assert "case007.png" in text and "not named in the spreadsheet" in text
    assert Image.objects.filter(source_dataset="BrEaST-Lesions_USG").count() == 5
    two = Image.objects.get(source_file="case002.png")
    assert two.status == Status.APPROVED and two.pixel_spacing_mm == pytest.approx(0.0681)
    assert lesions_of(two)[0].descriptors["margin"] == ["indistinct", "spiculated"]
    assert page.js_errors == []
