"""A real gunicorn server on its own database, for concurrency and fault tests (marker: slow)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, name: str, workers: int = 4, threads: int = 1):
        self.db = f"busreview_live_{name}_{os.getpid()}"
        base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/busreview")
        self.url = base.rsplit("/", 1)[0] + "/" + self.db
        self.env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DATABASE_URL": self.url,
            "DJANGO_SETTINGS_MODULE": "busreview.settings_test",
            "DEBUG": "0",
            "SECRET_KEY": "live-test-" + "z" * 40,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "CACHE_PREFIX": self.db,
        }
        self.port = free_port()
        self.workers = workers
        self.threads = threads
        self.proc: subprocess.Popen | None = None

    # --- database --------------------------------------------------------------------------
    def sql(self, query: str, params=()):
        conn = psycopg2.connect(self.url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def create(self) -> None:
        self.drop()
        subprocess.run([sys.executable, "scripts/ensure_database.py"], cwd=ROOT, env=self.env, check=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env, check=True)

    def drop(self) -> None:
        admin = psycopg2.connect(self.url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        admin.close()

    def seed(self, script: str) -> dict:
        """Run Python (with Django set up) against this database; it prints one JSON object."""
        code = "import django, json; django.setup()\n" + script
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=self.env, check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    # --- server ----------------------------------------------------------------------------
    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        cmd = [
            str(gunicorn),
            "busreview.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--timeout",
            "60",
            "--log-level",
            "warning",
            # gunicorn >= 24 opens a control socket at one per-user default path: two servers on one
            # host (parallel test runs, a bench beside scripts/run) would fight over it.
            "--no-control-socket",
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/accounts/login/")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: no clean shutdown, no finally blocks."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def request(self, method: str, path: str, body=None, token: str | None = None, timeout: float = 30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        data = json.dumps(body) if body is not None and not isinstance(body, bytes) else body
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/octet-stream"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = None
            return response.status, parsed
        finally:
            conn.close()

    def wait_for_lock_waiter(self, timeout: float = 20) -> None:
        """Until some backend of this database is blocked waiting for a lock (mid-transaction)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [self.db]
            )
            if rows[0][0]:
                return
            time.sleep(0.05)
        raise AssertionError("no request reached the lock")
