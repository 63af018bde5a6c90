"""Where a contour save spends its time: cProfile of N saves through the whole Django stack.

    .venv/bin/python bench/profile_save.py [--saves 300] [--points 72] [--top 30]

Runs in one process against its own database ``busreview_bench_profile`` (recreated): the same
request as bench/save_latency.py (``PUT /api/layers/<id>/`` with token auth, one benign oval)
sent through Django's WSGI handler with DRF's APIClient, so middleware, authentication, the view,
the workflow, the queries and the serializer are all in the profile (no network, no gunicorn).
Also prints the SQL queries of one save, and times ``GET /api/whoami/`` (the benchmark's floor)
the same way, interleaved with the saves.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, prepare_database, print_machine  # noqa: E402
from bench.save_latency import setup_clients  # noqa: E402

DB = "busreview_bench_profile"


def short_sql(sql: str, width: int = 150) -> str:
    """A query on one line with its column list elided: SELECT … FROM table WHERE …"""
    import re

    sql = re.sub(r"^SELECT (?!1 AS).*? FROM ", "SELECT … FROM ", sql)
    sql = re.sub(r"^UPDATE (\S+) SET .*? WHERE ", r"UPDATE \1 SET … WHERE ", sql)
    sql = re.sub(r"^INSERT INTO (\S+) .*", r"INSERT INTO \1 …", sql)
    return sql if len(sql) <= width else sql[: width - 1] + "…"


def breakdown(stats: pstats.Stats, filename: str, function: str, calls: int) -> None:
    """What one function spends its time on: each callee's cumulative time, in ms per save."""
    table = stats.stats  # type: ignore[attr-defined]
    parent = next(k for k in table if k[0].endswith(filename) and k[2] == function)
    total = table[parent][3]
    rows = []
    for key, (_, _, _, _, callers) in table.items():
        if parent in callers:
            rows.append((callers[parent][3], key))
    print(f"\n--- {filename}:{function}: {1000 * total / calls:.2f} ms per save (profiled), spent in ---")
    for cumulative, (path, line, name) in sorted(rows, reverse=True)[:14]:
        print(f"  {1000 * cumulative / calls:6.2f} ms  {Path(path).name}:{line}({name})")
    own = table[parent][2]
    print(f"  {1000 * own / calls:6.2f} ms  (own code)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--points", type=int, default=72)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--debug", default="1", help="DEBUG setting (1 as in the benchmark)")
    args = parser.parse_args()
    print_machine()
    prepare_database(DB)
    os.environ.update(bench_env(DB, debug=args.debug == "1"))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client_info = setup_clients(1, args.points)[0]
    client = APIClient(SERVER_NAME="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Token {client_info['token']}")
    layer = client.post(f"/api/images/{client_info['image']}/start/").json()
    layer_id, version = layer["id"], layer["version"]
    contours = client_info["contours"]

    def save() -> None:
        nonlocal version
        body = {
            "version": version,
            "lesions": [{"label": "benign", "points": contours[version % 2]}],
            "is_normal": False,
            "doppler": False,
            "marks": False,
            "combined": False,
            "note": "",
        }
        response = client.put(f"/api/layers/{layer_id}/", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
        version = response.json()["version"]

    for _ in range(30):  # warm up
        save()
    with CaptureQueriesContext(connection) as queries:
        save()
    print(f"\nSQL of one save ({len(queries.captured_queries)} queries):")
    for q in queries.captured_queries:
        print(f"  {short_sql(q['sql'])}")

    def floor() -> None:
        response = client.get("/api/whoami/")
        assert response.status_code == 200, response.content

    for _ in range(30):
        floor()
    # Interleaved rounds, so that a change in the machine's load hits both alike.
    plain_total = floor_total = 0.0
    rounds = 5
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(args.saves // rounds):
            save()
        plain_total += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(args.saves // rounds):
            floor()
        floor_total += time.perf_counter() - started
    plain = plain_total / (rounds * (args.saves // rounds))
    floor_time = floor_total / (rounds * (args.saves // rounds))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.saves):
        save()
    profiler.disable()
    print(f"\n{args.saves} saves: {plain * 1000:.2f} ms per save without the profiler (one process, no network)")
    print(
        f"floor GET /api/whoami/: {floor_time * 1000:.2f} ms per request, same process, interleaved;"
        f" floor/save {floor_time / plain:.2f}x (the in-process ceiling of the benchmark's throughput ratio)"
    )
    stats = pstats.Stats(profiler)
    for where in (
        ("api.py", "update"),
        ("workflow.py", "save_draft"),
        ("workflow.py", "_write_lesions"),
        ("serializers.py", "content"),
        ("geometry.py", "validate_ring"),
    ):
        breakdown(stats, *where, args.saves)
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key)
        stats.print_stats(args.top)
        print(f"\n--- top {args.top} by {key} ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:12000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
