"""Shared by the benchmarks: their own databases, Django start-up, machine facts, measures.

Every benchmark uses databases named ``busreview_bench*`` (never the app's own) and ports
8780-8799; nothing here touches anything else.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
CACHE = Path(os.environ.get("BENCH_CACHE", "/tmp/busreview-bench"))


def database_url(name: str) -> str:
    if not name.startswith("busreview_bench"):
        raise ValueError(f"benchmarks only use databases named busreview_bench*, not {name}")
    return f"{PG_SERVER}/{name}"


def pg_dsn(name: str) -> str:
    """The same database as a libpq DSN for plain psycopg2 (the floors)."""
    return database_url(name)


def bench_env(name: str, debug: bool = True, **extra: str) -> dict[str, str]:
    """Environment for the app against database ``name``; ``debug=False`` is the production setting
    (a SECRET_KEY is then required; it is a throw-away one, the benchmark serves no one)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(name),
        DJANGO_SETTINGS_MODULE="busreview.settings",
        DEBUG="1" if debug else "0",
        CACHE_PREFIX=f"{name}",
        PYTHONPATH=str(ROOT),
    )
    if not debug:
        env.setdefault("SECRET_KEY", "benchmark-only-" + "k" * 40)
        env.setdefault("SECURE_SSL_REDIRECT", "0")
    env.update(extra)
    return env


def drop_database(name: str) -> None:
    import psycopg2

    database_url(name)  # name check
    conn = psycopg2.connect(f"{PG_SERVER}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def prepare_database(name: str, *, fresh: bool = True) -> None:
    """(Re)create ``name`` with scripts/ensure_database.py and migrate it, as the README says."""
    if fresh:
        drop_database(name)
    env = bench_env(name)
    subprocess.run([PY, "scripts/ensure_database.py"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def django_setup(name: str) -> None:
    """Start Django in this process against the benchmark database ``name`` (DEBUG as inherited)."""
    os.environ.update(bench_env(name, debug=os.environ.get("DEBUG", "1") != "0"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def print_machine() -> None:
    m = machine()
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['memory_gib']} GiB, Python {m['python']}, {m['date']}")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mb() -> float:
    """Resident set size of this process now."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM: per address space, so exec resets it,
    unlike getrusage's ru_maxrss, which can carry the parent's size over a fork+exec)."""
    return _status_kb("VmHWM") / 1024


def cpu_seconds_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def pids_matching(predicate) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if predicate(int(entry.name), int(stat[1]), cmdline):
            out.append(int(entry.name))
    return out


def postgres_backends(dbname: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to ``dbname`` (their process title names it)."""
    return pids_matching(lambda pid, ppid, cmd: cmd.startswith("postgres: ") and f" {dbname} " in cmd)


def run_child(args: list[str], env: dict[str, str], timeout: float = 1800) -> dict:
    """Run a child that prints one JSON object on its last stdout line; return that object."""
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"{' '.join(args)} exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
        print(f"results written to {path}")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def background_load(seconds: float = 2.0) -> float:
    """Share of the machine's CPU busy over ``seconds`` (other sessions may share this machine)."""
    b0, t0 = machine_jiffies()
    time.sleep(seconds)
    b1, t1 = machine_jiffies()
    return (b1 - b0) / max(t1 - t0, 1)


def wait_quiet(limit: float = 0.15, patience: float = 120.0) -> float:
    """Wait (up to ``patience`` s) until the machine is mostly idle; return the load seen.

    The figures are only as good as the machine is quiet: a test suite running beside a benchmark
    takes cores from both the measured run and its floor.
    """
    deadline = time.monotonic() + patience
    load = background_load()
    while load > limit and time.monotonic() < deadline:
        print(f"  machine busy at {load:.0%} before the run (other processes); waiting for it to calm down")
        time.sleep(5)
        load = background_load()
    if load > limit:
        print(f"  WARNING: machine still {load:.0%} busy with other processes; figures will be pessimistic")
    return load


class LoadWatch:
    """How busy other processes kept the machine while a measured child ran.

    ``other_cores`` = machine CPU used during the run, minus the children's CPU (getrusage) and
    minus the PostgreSQL backends serving ``dbname`` (sampled every 0.2 s), per second of wall time.
    """

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.db_seen: dict[int, float] = {}
        self.db_start: dict[int, float] = {}
        self._stop = False

    def _sample(self) -> None:
        while not self._stop:
            for pid in postgres_backends(self.dbname):
                cpu = proc_cpu_seconds(pid)
                self.db_seen[pid] = max(cpu, self.db_seen.get(pid, 0.0))
            time.sleep(0.2)

    def __enter__(self) -> LoadWatch:
        import threading

        self.db_start = {pid: proc_cpu_seconds(pid) for pid in postgres_backends(self.dbname)}
        self.children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.jiffies0 = machine_jiffies()
        self.wall0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()
        self.wall = time.perf_counter() - self.wall0
        b0, _ = self.jiffies0
        b1, _ = machine_jiffies()
        c0, c1 = self.children0, resource.getrusage(resource.RUSAGE_CHILDREN)
        self.child_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        self.db_cpu = sum(max(0.0, cpu - self.db_start.get(pid, 0.0)) for pid, cpu in self.db_seen.items())
        busy = (b1 - b0) / os.sysconf("SC_CLK_TCK")
        self.other_cores = max(0.0, busy - self.child_cpu - self.db_cpu) / max(self.wall, 1e-9)


def run_watched(args: list[str], env: dict[str, str], dbname: str, timeout: float = 1800, label: str = "") -> dict:
    """run_child, adding the PostgreSQL backends' CPU and the load of other processes meanwhile."""
    with LoadWatch(dbname) as watch:
        result = run_child(args, env, timeout)
    result["db_cpu_s"] = watch.db_cpu
    result["other_cores"] = watch.other_cores
    if watch.other_cores > 0.15:
        print(f"    note: other processes used {watch.other_cores:.2f} cores during the {label or 'measured'} run")
    return result
