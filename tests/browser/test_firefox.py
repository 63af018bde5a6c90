"""The annotation page in Firefox too (Debian's Firefox ESR over WebDriver BiDi, via puppeteer-core).

Skipped where Firefox, Node.js or tests/firefox/node_modules are missing; scripts/test installs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from annotator.models import MaskLayer
from tests.factories import PASSWORD, make_image, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # scripts/test installs the Node packages only where npm is there; Chromium covers the page in CI.
    pytest.mark.ci_may_skip(reason="needs Node.js and npm, which scripts/test treats as optional"),
]

HERE = Path(__file__).resolve().parent.parent / "firefox"


def test_drawing_a_polygon_in_firefox_is_stored(live_server, tmp_path):
    if not (shutil.which("node") and Path("/usr/bin/firefox-esr").exists() and (HERE / "node_modules").is_dir()):
        pytest.skip("Firefox ESR, Node.js or tests/firefox/node_modules missing")
    from annotator.permissions import ANNOTATOR

    alice = make_user("alice", ANNOTATOR)
    image = make_image("FIRE_000.png", width=856, height=606, annotator=alice)
    result = subprocess.run(
        ["node", "draw_polygon.mjs", live_server.url, str(image.pk), "alice", PASSWORD, str(tmp_path / "ff.png")],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["browser"].startswith("firefox/") and seen["errors"] == []
    layer = MaskLayer.objects.get(image=image)
    (lesion,) = layer.lesions.all()
    assert lesion.label == "malignant" and layer.version == seen["version"]
    expected = [[300, 200], [420, 190], [460, 300], [350, 360]]
    assert len(lesion.points) == 4
    assert all(
        abs(px - ex) <= 1.5 and abs(py - ey) <= 1.5 for (px, py), (ex, ey) in zip(lesion.points, expected, strict=True)
    )
