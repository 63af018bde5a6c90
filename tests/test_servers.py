"""Several gunicorn servers on one host: nothing shared between them but the host."""

from __future__ import annotations

import re
from pathlib import Path

from tests.live import ROOT, LiveServer


def test_two_live_servers_at_once_open_no_shared_control_socket(tmp_path: Path):
    """gunicorn >= 24 opens a control socket at $XDG_RUNTIME_DIR or $HOME/.gunicorn/gunicorn.ctl, one path
    per user: two servers would share it. The test servers start with none."""
    servers = [LiveServer(f"ctl{i}", workers=1) for i in range(2)]
    for server in servers:
        server.env["HOME"] = str(tmp_path)
        server.env.pop("XDG_RUNTIME_DIR", None)
    try:
        for server in servers:
            server.start()
        for server in servers:
            status, _ = server.request("GET", "/accounts/login/")
            assert status < 600
            assert server.proc.poll() is None
        assert list(tmp_path.rglob("*.ctl")) == []
    finally:
        for server in servers:
            server.kill()


def test_scripts_run_serves_without_a_control_socket():
    """scripts/run (also the Docker image's command) starts gunicorn with --no-control-socket."""
    script = (ROOT / "scripts" / "run").read_text()
    command = re.search(r'^"\$GUNICORN" busreview\.wsgi .*$', script, re.M)
    assert command is not None
    assert "--no-control-socket" in command.group(0)
