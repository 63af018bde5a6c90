"""Fixtures shared by the test files: the named users and the common worlds, built on tests/factories.py.

Users: ``alice`` (annotator), ``bob`` (reviewer), ``carol`` (curator), ``dave`` (annotator and
reviewer), ``erin`` (another annotator), ``admin`` (superuser "root"). Worlds are alice's images
brought to a status through the workflow itself, bob reviewing: ``new_image``, ``draft_image``
(one benign square), ``submitted_image``, ``returned_image``, ``approved_image``; ``image_in``
makes more of them (``image_in("submitted", "BBBB_000.png")``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import factories
from tests.ci import pytest_configure, pytest_make_collect_report, pytest_runtest_makereport, shared_sample

__all__ = ["pytest_configure", "pytest_make_collect_report", "pytest_runtest_makereport"]

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bus-uclm-sample"


@pytest.fixture
def sample_dir() -> Path:
    """The shared 33-image sample; skipped where it is absent, a failure under CI=true."""
    return shared_sample(SAMPLE)


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


# --- named users --------------------------------------------------------------------------------


@pytest.fixture
def alice(db):
    return factories.alice()


@pytest.fixture
def bob(db):
    return factories.bob()


@pytest.fixture
def carol(db):
    return factories.carol()


@pytest.fixture
def dave(db):
    return factories.dave()


@pytest.fixture
def erin(db):
    return factories.erin()


@pytest.fixture
def admin(db):
    return factories.admin()


# --- worlds -------------------------------------------------------------------------------------


@pytest.fixture
def image_in(alice, bob) -> Callable[..., factories.Image]:
    """image_in(status, name) -> an image of alice's brought to ``status`` by alice and bob."""

    def make(status: str, name: str = "AAAA_000.png") -> factories.Image:
        return factories.image_in(status, annotator=alice, reviewer=bob, name=name)

    return make


@pytest.fixture
def new_image(image_in):
    return image_in("new")


@pytest.fixture
def draft_image(image_in):
    return image_in("draft")


@pytest.fixture
def submitted_image(image_in):
    return image_in("submitted")


@pytest.fixture
def returned_image(image_in):
    return image_in("returned")


@pytest.fixture
def approved_image(image_in):
    return image_in("approved")


@pytest.fixture
def double_image_in(alice, erin, bob, carol) -> Callable[..., factories.Image]:
    """double_image_in(status, name, second_submitted=False) -> an image read blind by alice
    (reader 1) and erin (reader 2), carol assigning and bob adjudicating."""

    def make(status: str, name: str = "DUAL_000.png", second_submitted: bool = False) -> factories.Image:
        return factories.double_image_in(
            status,
            first=alice,
            second=erin,
            adjudicator=bob,
            curator=carol,
            name=name,
            second_submitted=second_submitted,
        )

    return make
