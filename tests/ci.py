"""Under CI a skipped test is a failed test, unless it declares why it may skip there.

A skip on a developer's machine says "this machine lacks something"; in CI it would hide a test
that never ran behind a green run. So when the environment variable ``CI`` is ``true`` (GitHub
Actions, GitLab and most runners set it; ``.ci/run`` runs under it), every skipped test is reported
as failed, except tests marked ``@pytest.mark.ci_may_skip(reason=...)``, which depend on something
CI may legitimately lack. Expected failures (``xfail``) are not skips and are left alone.

The hooks are re-exported by ``tests/conftest.py``; ``tests/test_ci_skips.py`` runs them as a
plugin (``-p tests.ci``) on generated test files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MARKER = "ci_may_skip"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def shared_sample(path: Path) -> Path:
    """``path`` if the shared BUS-UCLM sample is there; else a skip, or under CI a failure."""
    if (path / "images").is_dir():
        return path
    if under_ci():
        pytest.fail(
            f"the shared BUS-UCLM sample is missing at {path}: under CI=true it must be present, "
            "since the tests that need it would otherwise not run",
            pytrace=False,
        )
    pytest.skip("the shared BUS-UCLM sample is not present")


def _reason(longrepr) -> str:
    # A skip's longrepr is (path, line, "Skipped: why").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _as_failure(report, node) -> None:
    """Turn a skip report into a failure, unless the node may skip under CI."""
    if not under_ci() or not report.skipped or hasattr(report, "wasxfail"):
        return
    if node.get_closest_marker(MARKER) is not None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, where a skip is a failure: {_reason(report.longrepr)}\n"
        f"(if this test legitimately depends on the environment, mark it "
        f"@pytest.mark.{MARKER}(reason=...) and say why in the README's Tests section)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(reason): this test may be skipped under CI=true (it depends on the environment)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    _as_failure(report, item)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    # A module-level skip (pytest.importorskip, skip(allow_module_level=True)) skips at collection.
    report = yield
    _as_failure(report, collector)
    return report
