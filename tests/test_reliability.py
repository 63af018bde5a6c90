"""Concurrency and faults against a real gunicorn server and PostgreSQL (slow: scripts/test -m slow).

Faults are injected without hooks in the code: a test connection takes a table lock that the
request needs at the end of its transaction, the request blocks there (its earlier writes done),
and the whole server is SIGKILLed. Afterwards the database must show no trace of that request.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from tests.factories import png_bytes
from tests.live import ROOT, LiveServer

pytestmark = pytest.mark.slow

SEED = """
from rest_framework.authtoken.models import Token
from annotator import workflow
from annotator.permissions import ANNOTATOR, REVIEWER, CURATOR
from tests.factories import make_user, make_image, content, SQUARE, submitted_image
alice = make_user("alice", ANNOTATOR)
reviewers = [make_user(f"r{i}", REVIEWER) for i in range(3)]
carol = make_user("carol", CURATOR)
drafts = []
for i in range(N_DRAFTS):
    image = make_image(f"CONC_{i:03d}.png", annotator=alice, width=856, height=606)
    layer = workflow.start(image_id=image.pk, user=alice)
    layer = workflow.save_draft(layer_id=layer.pk, user=alice, content=content(("benign", SQUARE)),
                                expected_version=layer.version)
    drafts.append({"image": image.pk, "layer": layer.pk, "version": layer.version})
submitted = [submitted_image(alice, f"REVW_{i:03d}.png").pk for i in range(N_SUBMITTED)]
approved = []
for i in range(N_APPROVED):
    image = submitted_image(alice, f"APPR_{i:03d}.png")
    workflow.approve(image_id=image.pk, user=reviewers[0])
    approved.append(image.pk)
tokens = {u.username: Token.objects.create(user=u).key for u in [alice, carol, *reviewers]}
print(json.dumps({"drafts": drafts, "submitted": submitted, "approved": approved, "tokens": tokens}))
"""


@pytest.fixture
def live(request):
    servers = []

    def make(name: str, *, drafts=0, submitted=0, approved=0, workers=4, threads=4):
        server = LiveServer(name, workers=workers, threads=threads)
        servers.append(server)
        server.create()
        data = server.seed(f"N_DRAFTS, N_SUBMITTED, N_APPROVED = {drafts}, {submitted}, {approved}\n" + SEED)
        server.start()
        return server, data

    yield make
    for server in servers:
        server.kill()
        server.drop()


def oval(cx: float, cy: float, n: int = 60) -> list[list[float]]:
    import math

    return [
        [round(cx + 60 * math.cos(2 * math.pi * k / n), 2), round(cy + 40 * math.sin(2 * math.pi * k / n), 2)]
        for k in range(n)
    ]


def test_concurrent_saves_submits_and_reviews_lose_nothing(live):
    server, data = live("conc", drafts=4, submitted=6)
    alice = data["tokens"]["alice"]
    statuses: Counter = Counter()
    accepted: dict[int, dict[int, list]] = {d["layer"]: {} for d in data["drafts"]}
    lock = threading.Lock()

    def saver(layer_id: int, worker: int, rounds: int = 12) -> None:
        for k in range(rounds):
            code, body = server.request("GET", f"/api/layers/{layer_id}/", token=alice)
            version = body["version"]
            lesions = [{"label": "malignant" if worker % 2 else "benign", "points": oval(200 + worker * 50, 200 + k)}]
            code, body = server.request(
                "PUT", f"/api/layers/{layer_id}/", {"version": version, "lesions": lesions}, token=alice
            )
            with lock:
                statuses[code] += 1
                if code == 200:
                    assert body["version"] not in accepted[layer_id], "two saves got the same version"
                    accepted[layer_id][body["version"]] = lesions

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(saver, d["layer"], w) for d in data["drafts"] for w in range(6)]
        for f in futures:
            f.result()
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[409] > 0, "the test made saves collide"
    for d in data["drafts"]:
        versions = sorted(accepted[d["layer"]])
        assert versions == list(range(d["version"] + 1, d["version"] + 1 + len(versions))), "no gap, no lost update"
        (stored_version,) = server.sql("SELECT version FROM annotator_masklayer WHERE id = %s", [d["layer"]])[0]
        assert stored_version == versions[-1]
        stored = server.sql("SELECT label, points FROM annotator_lesion WHERE layer_id = %s", [d["layer"]])
        assert [[row[0], row[1]] for row in stored] == [
            [les["label"], les["points"]] for les in accepted[d["layer"]][versions[-1]]
        ]
    saves_audited = server.sql(
        "SELECT count(*) FROM annotator_auditevent WHERE action = 'save_draft' AND layer_id = ANY(%s)",
        [[d["layer"] for d in data["drafts"]]],
    )[0][0]
    assert saves_audited == len(data["drafts"]) + statuses[200]  # the seed saved each draft once

    # Submit while others still save: the submit wins or is stale; later saves are refused.
    race: Counter = Counter()

    def submit_or_save(layer_id: int, worker: int) -> None:
        code, body = server.request("GET", f"/api/layers/{layer_id}/", token=alice)
        if worker == 0:
            for _ in range(20):
                code, body = server.request(
                    "POST", f"/api/layers/{layer_id}/submit/", {"version": body["version"]}, token=alice
                )
                race[("submit", code)] += 1
                if code == 200:
                    return
                _, body = server.request("GET", f"/api/layers/{layer_id}/", token=alice)
        else:
            code, _ = server.request(
                "PUT",
                f"/api/layers/{layer_id}/",
                {"version": body["version"], "lesions": [{"label": "benign", "points": oval(400, 300)}]},
                token=alice,
            )
            race[("save", code)] += 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        for f in [pool.submit(submit_or_save, d["layer"], w) for d in data["drafts"] for w in range(4)]:
            f.result()
    assert race[("submit", 200)] == len(data["drafts"])
    assert {code for (_, code) in race} <= {200, 409}, race
    assert (
        server.sql("SELECT count(*) FROM annotator_image WHERE name LIKE 'CONC_%%' AND status = 'submitted'")[0][0] == 4
    )

    # Three reviewers decide on the same images at once: exactly one decision each.
    decisions: Counter = Counter()

    def review(image_id: int, who: str) -> None:
        token = data["tokens"][who]
        if who == "r1":
            code, _ = server.request("POST", f"/api/images/{image_id}/send-back/", {"comment": "again"}, token=token)
        else:
            code, _ = server.request("POST", f"/api/images/{image_id}/approve/", {}, token=token)
        decisions[code] += 1

    with ThreadPoolExecutor(max_workers=18) as pool:
        for f in [pool.submit(review, i, who) for i in data["submitted"] for who in ("r0", "r1", "r2")]:
            f.result()
    assert decisions[200] == len(data["submitted"]) and set(decisions) <= {200, 409}, decisions
    per_image = server.sql(
        "SELECT image_id, count(*) FROM annotator_review WHERE image_id = ANY(%s) GROUP BY image_id",
        [data["submitted"]],
    )
    assert sorted(n for _, n in per_image) == [1] * len(data["submitted"])
    transitions = server.sql(
        "SELECT count(*) FROM annotator_auditevent WHERE action IN ('approve', 'send_back') AND image_id = ANY(%s)",
        [data["submitted"]],
    )[0][0]
    assert transitions == len(data["submitted"])
    print(f"\nconcurrency: saves {dict(statuses)}, submit race {dict(race)}, reviews {dict(decisions)}")


def blocked_request(
    server: LiveServer,
    lock_sql: str,
    method: str,
    path: str,
    body,
    token: str,
    raw_body: bytes | None = None,
    content_type: str | None = None,
) -> None:
    """Send a request that blocks on ``lock_sql``'s lock mid-transaction, then SIGKILL the server."""
    holder = psycopg2.connect(server.url)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute(lock_sql)
    result: dict = {}

    def send() -> None:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            headers = {"Authorization": f"Token {token}", "Content-Type": content_type or "application/json"}
            conn.request(method, path, body=raw_body if raw_body is not None else json.dumps(body), headers=headers)
            result["status"] = conn.getresponse().status
        except OSError as e:
            result["error"] = e
        finally:
            conn.close()

    thread = threading.Thread(target=send)
    thread.start()
    server.wait_for_lock_waiter()
    server.kill()
    holder.rollback()
    holder.close()
    thread.join(timeout=30)
    assert "status" not in result, "the server was killed before it could answer"
    # The killed request's backend notices its client is gone and rolls back.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        busy = server.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state LIKE 'idle in%%'", [server.db]
        )[0][0]
        if not busy:
            break
        time.sleep(0.1)


def layer_state(server: LiveServer, layer_id: int):
    return (
        server.sql("SELECT status, version FROM annotator_masklayer WHERE id = %s", [layer_id])[0],
        server.sql("SELECT label, points FROM annotator_lesion WHERE layer_id = %s ORDER BY index", [layer_id]),
        server.sql("SELECT count(*) FROM annotator_auditevent")[0][0],
    )


def test_a_save_killed_mid_transaction_leaves_the_layer_as_it_was(live):
    server, data = live("kill_save", drafts=1, workers=1, threads=1)
    draft = data["drafts"][0]
    before = layer_state(server, draft["layer"])
    body = {"version": draft["version"], "lesions": [{"label": "malignant", "points": oval(300, 300)}]}
    blocked_request(
        server,
        "LOCK TABLE annotator_auditevent IN EXCLUSIVE MODE",
        "PUT",
        f"/api/layers/{draft['layer']}/",
        body,
        data["tokens"]["alice"],
    )
    assert layer_state(server, draft["layer"]) == before
    server.start()
    code, body = server.request("PUT", f"/api/layers/{draft['layer']}/", body, token=data["tokens"]["alice"])
    assert code == 200, "after the restart the same save goes through"


def test_a_transition_killed_mid_transaction_leaves_the_status_as_it_was(live):
    server, data = live("kill_submit", drafts=1, workers=1, threads=1)
    draft = data["drafts"][0]
    before = layer_state(server, draft["layer"])
    blocked_request(
        server,
        "LOCK TABLE annotator_auditevent IN EXCLUSIVE MODE",
        "POST",
        f"/api/layers/{draft['layer']}/submit/",
        {"version": draft["version"]},
        data["tokens"]["alice"],
    )
    assert layer_state(server, draft["layer"]) == before
    assert server.sql("SELECT status FROM annotator_image WHERE id = %s", [draft["image"]])[0][0] == "draft"


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, (filename, data) in fields.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def test_an_import_killed_mid_image_leaves_no_half_imported_image(live):
    server, data = live("kill_import", workers=1, threads=1)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"images/KILL_{i:03d}.png", png_bytes(seed=i))
    body, content_type = multipart({"archive": ("data.zip", archive.getvalue())})
    blocked_request(
        server,
        "LOCK TABLE annotator_auditevent IN EXCLUSIVE MODE",
        "POST",
        "/api/import/",
        None,
        data["tokens"]["carol"],
        raw_body=body,
        content_type=content_type,
    )
    assert server.sql("SELECT count(*) FROM annotator_image")[0][0] == 0
    assert server.sql("SELECT count(*) FROM annotator_imagedata")[0][0] == 0
    assert server.sql("SELECT count(*) FROM annotator_patient")[0][0] == 0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (RQ's work horse runs in a session of its own)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                children.append(int(entry))
    os.kill(pid, signal.SIGKILL)
    for child in children:
        kill_tree(child)


def test_an_export_worker_killed_mid_export_never_marks_the_job_done(live):
    server, data = live("kill_export", approved=3, workers=1, threads=1)
    import redis

    redis_url = (
        server.env.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
        + "/"
        + os.getenv("RQ_TEST_REDIS_DB", "15")
    )
    redis.Redis.from_url(redis_url).delete("rq:queue:default")
    code, job = server.request("POST", "/api/export-jobs/", {"formats": "bus-uclm"}, token=data["tokens"]["carol"])
    assert code == 201
    holder = psycopg2.connect(server.url)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE curator_exportchunk IN EXCLUSIVE MODE")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT,
        env=server.env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.wait_for_lock_waiter(timeout=60)
    finally:
        kill_tree(worker.pid)
        worker.wait(timeout=10)
        holder.rollback()
        holder.close()
    time.sleep(1)
    (status,) = server.sql("SELECT status FROM curator_exportjob WHERE id = %s", [job["id"]])[0]
    assert status == "running", "claimed by the worker, never marked done"
    assert server.sql("SELECT count(*) FROM curator_exportchunk")[0][0] == 0
    code, state = server.request("GET", f"/api/export-jobs/{job['id']}/", token=data["tokens"]["carol"])
    assert code == 200 and state["status"] in ("running", "failed") and state["percent"] < 100
