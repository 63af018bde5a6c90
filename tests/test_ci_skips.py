"""Under CI=true a skipped test fails the run, unless it is marked ci_may_skip; tests/ci.py.

Each case runs pytest in a subprocess on a small generated test file, with tests/ci.py as its only
plugin (no Django, no conftest), and reads the outcome of every test from the -rA summary.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ci

ROOT = Path(__file__).resolve().parent.parent

GENERATED = """
import pytest

def test_passes():
    pass

def test_skips_in_its_body():
    pytest.skip("no scanner attached")

@pytest.mark.skipif(True, reason="not on this platform")
def test_skipped_by_a_marker():
    pass

@pytest.fixture
def needs_something():
    pytest.skip("something is missing")

def test_skipped_by_a_fixture(needs_something):
    pass

@pytest.mark.ci_may_skip(reason="an optional browser")
def test_may_skip_under_ci():
    pytest.skip("optional browser missing")

@pytest.mark.xfail(strict=True, reason="a known defect")
def test_known_defect():
    assert False
"""


def run_pytest(tmp_path: Path, source: str, ci_value: str | None) -> tuple[int, dict[str, str], str]:
    """(exit code, {test name: outcome}, output) of pytest on ``source`` with CI set to ``ci_value``."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_generated.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONPATH=str(ROOT))
    if ci_value is not None:
        env["CI"] = ci_value
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci", "-p", "no:cacheprovider", "-rA", "test_generated.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    outcomes = {
        name: outcome
        for outcome, name in re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\S* \S*?::(\w+)", output, re.M)
    }
    # -rA lists skips as "SKIPPED [1] test_generated.py:7: reason", without the test's name.
    skipped = len(re.findall(r"^SKIPPED \[", output, re.M))
    return result.returncode, outcomes | ({"(skipped)": str(skipped)} if skipped else {}), output


@pytest.mark.parametrize("ci_value", ["true", "True", "1"])
def test_under_ci_any_undeclared_skip_fails_the_run(tmp_path, ci_value):
    code, outcomes, output = run_pytest(tmp_path, GENERATED, ci_value)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert outcomes == {
        "test_passes": "PASSED",
        "test_skips_in_its_body": "FAILED",
        "test_skipped_by_a_marker": "ERROR",  # skip markers act in setup, so the setup fails
        "test_skipped_by_a_fixture": "ERROR",
        "test_known_defect": "XFAIL",  # an expected failure is not a skip
        "(skipped)": "1",  # test_may_skip_under_ci
    }, output
    assert "skipped under CI=true, where a skip is a failure: no scanner attached" in output
    assert "ci_may_skip" in output  # the message says how to declare a legitimate skip


@pytest.mark.parametrize("ci_value", [None, "false", ""])
def test_outside_ci_skips_stay_skips(tmp_path, ci_value):
    code, outcomes, output = run_pytest(tmp_path, GENERATED, ci_value)
    assert code == pytest.ExitCode.OK, output
    assert outcomes == {"test_passes": "PASSED", "test_known_defect": "XFAIL", "(skipped)": "4"}, output


def test_under_ci_a_module_skipped_at_collection_fails_the_run(tmp_path):
    source = 'import pytest\npytest.importorskip("no_such_module_here")\n\ndef test_never_runs():\n    pass\n'
    code, _, output = run_pytest(tmp_path, source, "true")
    assert code != pytest.ExitCode.OK, output
    assert "skipped under CI=true" in output and "no_such_module_here" in output
    code, _, output = run_pytest(tmp_path, source, None)
    assert code == pytest.ExitCode.NO_TESTS_COLLECTED, output


def test_the_shared_sample_is_required_under_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must be present"):
        ci.shared_sample(tmp_path / "absent")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        ci.shared_sample(tmp_path / "absent")
    (tmp_path / "present" / "images").mkdir(parents=True)
    monkeypatch.setenv("CI", "true")
    assert ci.shared_sample(tmp_path / "present") == tmp_path / "present"
