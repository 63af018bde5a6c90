from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bus-uclm-sample"


@pytest.fixture
def sample_dir():
    if not (SAMPLE / "images").is_dir():
        pytest.skip("the shared BUS-UCLM sample is not present")
    return SAMPLE


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
