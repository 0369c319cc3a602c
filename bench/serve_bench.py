"""The dashboard as `make serve` runs it, measured side by side with calling the stand-in directly.

    .venv/bin/python bench/serve_bench.py [--delay 0.05] [--database sqlite|postgres|both]

gunicorn starts with the root gunicorn.conf.py (2 workers x 8 threads) on a free loopback port,
over a fresh database, pointed at the Align stand-in with injected latency. The stand-in runs in
its own process (so the load generator's threads do not share its interpreter lock) and listens
twice: once for the dashboard and once for the bare path, so the dashboard's upstream connections
are counted alone. Each figure is measured in the same run as its bare counterpart:

1. sequential htmx lookups from one logged-in session, each followed by the same call made
   directly with `requests`: p50 and p95; then as many sequential requests of /healthz, the HTTP
   hop through gunicorn alone, which no lookup can go below;
2. 16 concurrent clients, each with its own session: throughput, errors, p50 and p99, then the
   same clients calling the stand-in directly;
3. the connections the dashboard's stand-in accepted from gunicorn's start to the end of (2);
4. bytes of the htmx fragment and of the first page load (HTML, CSS and JS, gzip as WhiteNoise
   serves it);
5. the peak RSS (VmHWM) of each gunicorn worker.

Then again on a throwaway PostgreSQL and Redis (tests/support/services.py) when `--database` is `both`
(the default, when their programs are installed) or `postgres`. Prints a table with each target;
asserts nothing (issue #11; figures and analysis in bench/README.md).
"""

import argparse
import contextlib
import gzip
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from customers.align.standin.demo import DemoId  # noqa: E402
from customers.align.standin.server import StubServer  # noqa: E402
from tests.support.servers import (  # noqa: E402
    free_loopback_port,
    inherited_env,
    post_login,
    prepare,
    production_env,
    staff_user_script,
    stop_process_group,
)

STAND_IN_KEY = "bench-stand-in-key"
USERNAME = "bench-user"
PASSWORD = "bench password, not used anywhere else"
SERVER_THREADS = 2 * 8  # gunicorn.conf.py: workers x threads
HTTP_TIMEOUT_SECONDS = 10
READY_WITHIN_SECONDS = 30
LOGINS_AT_ONCE = 4
WARM_UP_LOOKUPS = 40
STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"')
DEMO_IDS = list(DemoId)


# --- The stand-in, in a process of its own ------------------------------------------------------


def run_stand_ins(delay: float, ports: "multiprocessing.Queue", orders) -> None:
    """Two stand-ins (dashboard's, bare path's); answer count requests until told to stop."""
    import logging

    logging.disable(logging.CRITICAL)  # a line per call would cost the stand-in more than its work
    servers = [StubServer(("127.0.0.1", 0), api_key=STAND_IN_KEY, delay=delay) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    ports.put([server.server_address[1] for server in servers])
    while orders.recv() != "stop":
        orders.send([(server.calls, server.connections) for server in servers])
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class StandIns:
    dashboard_url: str
    bare_url: str
    _orders: object
    _process: multiprocessing.Process

    def counts(self) -> dict[str, tuple[int, int]]:
        """(calls, connections) so far, per stand-in."""
        self._orders.send("counts")
        dashboard, bare = self._orders.recv()
        return {"dashboard": tuple(dashboard), "bare": tuple(bare)}


@contextlib.contextmanager
def stand_ins(delay: float) -> Iterator[StandIns]:
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    ours, theirs = context.Pipe()
    process = context.Process(target=run_stand_ins, args=(delay, ports, theirs), daemon=True)
    process.start()
    dashboard_port, bare_port = ports.get(timeout=10)
    try:
        yield StandIns(f"http://127.0.0.1:{dashboard_port}", f"http://127.0.0.1:{bare_port}", ours, process)
    finally:
        ours.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


# --- The dashboard under gunicorn ---------------------------------------------------------------


def server_env(workdir: Path, align_url: str, services: dict[str, str]) -> dict[str, str]:
    """Production settings (debug off) fed a bench environment, over a migrated database with a user."""
    env = production_env(
        workdir,
        align_url=align_url,
        align_key=STAND_IN_KEY,
        inherited=inherited_env(drop_names=("DATABASE_URL", "REDIS_URL")),
        ALIGN_API_TIMEOUT="5",
        # Where gunicorn would put files of its own (it puts none: gunicorn.conf.py).
        HOME=str(workdir),
        **services,
    )
    prepare(env, staff_user_script(USERNAME, PASSWORD), timeout=120)
    return env


@dataclass
class Gunicorn:
    process: subprocess.Popen
    url: str

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time these processes have used so far (/proc/<pid>/stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_and_total() -> tuple[int, int]:
    """Jiffies all cores spent busy, and in all, since boot (/proc/stat)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError(f"no VmHWM for {pid}")


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[Gunicorn]:
    """`make serve`'s last step: gunicorn with the root gunicorn.conf.py, on a free port."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py"]
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603  (our own gunicorn)
            command,
            cwd=PROJECT_DIR,
            env=env | {"BIND": "127.0.0.1", "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_WITHIN_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; its log is {log_path}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/accounts/login/", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield Gunicorn(process, url)
    finally:
        stop_process_group(process, within=15)


# --- Clients ------------------------------------------------------------------------------------


def logged_in_session(url: str) -> requests.Session:
    session = requests.Session()
    answer = post_login(session, url, USERNAME, PASSWORD, timeout=HTTP_TIMEOUT_SECONDS)
    if answer.url != f"{url}/customers/":
        raise SystemExit(f"the login did not reach the search page (status {answer.status_code})")
    # gunicorn drops connections idle past its keep-alive (2 s); start the lookups on fresh ones.
    session.close()
    return session


def bare_session() -> requests.Session:
    session = requests.Session()
    session.headers.update({"Api-Key": STAND_IN_KEY, "Accept": "application/json"})
    return session


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def add(self, started: float, answer: requests.Response | None) -> None:
        self.seconds.append(time.perf_counter() - started)
        if answer is None or answer.status_code != 200:
            self.errors += 1

    def percentile_ms(self, percent: int) -> float:
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[percent - 1] * 1000

    @property
    def per_second(self) -> float:
        return len(self.seconds) / self.elapsed


def timed_get(timings: Timings, session: requests.Session, url: str, headers: dict[str, str]) -> None:
    started = time.perf_counter()
    try:
        answer = session.get(url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException:
        answer = None
    timings.add(started, answer)


def dashboard_lookup(timings: Timings, session: requests.Session, url: str, number: int) -> None:
    timed_get(
        timings, session, f"{url}/customers/{DEMO_IDS[number % len(DEMO_IDS)]}/", {"HX-Request": "true"}
    )


def bare_lookup(timings: Timings, session: requests.Session, url: str, number: int) -> None:
    timed_get(timings, session, f"{url}/v0/customers/{DEMO_IDS[number % len(DEMO_IDS)]}", {})


def concurrently(lookup, sessions: list[requests.Session], url: str, total: int) -> Timings:
    """`total` lookups shared by one thread per session, each thread's in turn."""
    timings = Timings()
    clients = len(sessions)

    def client(index: int) -> None:
        for number in range(index, total, clients):
            lookup(timings, sessions[index], url, number)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    timings.elapsed = time.perf_counter() - started
    return timings


def wire_bytes(
    session: requests.Session, url: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """(bytes as sent, the body decoded) of one answer, asking for gzip as browsers do."""
    answer = session.get(
        url, headers={"Accept-Encoding": "gzip", **(headers or {})}, timeout=HTTP_TIMEOUT_SECONDS, stream=True
    )
    raw = answer.raw.read(decode_content=False)
    answer.close()
    if answer.status_code != 200:
        raise SystemExit(f"{url} answered {answer.status_code}")
    decoded = gzip.decompress(raw) if answer.headers.get("Content-Encoding") == "gzip" else raw
    return len(raw), decoded


# --- One run ------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    dashboard: str
    bare: str
    target: str
    passed: bool | None


def measure(label: str, services: dict[str, str], options: argparse.Namespace) -> list[Row]:
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-bench-"))
    try:
        with stand_ins(options.delay) as stand_in:
            env = server_env(workdir, stand_in.dashboard_url, services)
            with gunicorn(env, workdir / "gunicorn.log") as server:
                return measure_server(label, server, stand_in, options)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure_server(
    label: str, server: Gunicorn, stand_in: StandIns, options: argparse.Namespace
) -> list[Row]:
    url = server.url
    print(f"[{label}] gunicorn at {url}, workers {server.worker_pids()}; logging in", flush=True)
    with ThreadPoolExecutor(LOGINS_AT_ONCE) as pool:
        sessions = list(pool.map(logged_in_session, [url] * options.clients))
    bares = [bare_session() for _ in range(options.clients)]

    print(f"[{label}] warming up", flush=True)
    concurrently(dashboard_lookup, sessions, url, WARM_UP_LOOKUPS)
    concurrently(bare_lookup, bares, stand_in.bare_url, WARM_UP_LOOKUPS)

    print(f"[{label}] {options.sequential} sequential htmx lookups, each beside a direct call", flush=True)
    sequential, sequential_bare = Timings(), Timings()
    for number in range(options.sequential):
        dashboard_lookup(sequential, sessions[0], url, number)
        bare_lookup(sequential_bare, bares[0], stand_in.bare_url, number)
    # The floor under every lookup: a request through gunicorn that Django answers in its fourth
    # middleware (dashboard/ops/health.py), with no session, database, template or Align call.
    hop = Timings()
    for _ in range(options.sequential):
        timed_get(hop, sessions[0], f"{url}/healthz", {})
    for session in sessions:
        session.close()  # idle past gunicorn's keep-alive while the others ran

    print(f"[{label}] {options.concurrent} lookups from {options.clients} clients, then direct", flush=True)
    workers = server.worker_pids()
    cpu_before, own_before, machine_before = (
        cpu_seconds(workers),
        time.process_time(),
        machine_busy_and_total(),
    )
    crowd = concurrently(dashboard_lookup, sessions, url, options.concurrent)
    cpu_per_lookup_ms = (cpu_seconds(workers) - cpu_before) / options.concurrent * 1000
    own_per_lookup_ms = (time.process_time() - own_before) / options.concurrent * 1000
    machine_after = machine_busy_and_total()
    busy = (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1])
    calls, connections = stand_in.counts()["dashboard"]
    crowd_bare = concurrently(bare_lookup, bares, stand_in.bare_url, options.concurrent)
    dashboard_lookups = WARM_UP_LOOKUPS + options.sequential + options.concurrent

    fragment_bytes, fragment = wire_bytes(
        sessions[0], f"{url}/customers/{DemoId.INDIVIDUAL_APPROVED}/", {"HX-Request": "true"}
    )
    fragment_plain = len(fragment)
    page_bytes, page = wire_bytes(sessions[0], f"{url}/customers/")
    page_plain = len(page)
    assets = sorted(set(STATIC_URL.findall(page.decode())))
    for asset in assets:
        sent, body = wire_bytes(sessions[0], f"{url}{asset}")
        page_bytes += sent
        page_plain += len(body)
    peaks = [peak_rss_kib(pid) for pid in server.worker_pids()]
    for session in sessions + bares:
        session.close()

    seq_ratio = sequential.percentile_ms(50) / sequential_bare.percentile_ms(50)
    crowd_ratio = crowd.per_second / crowd_bare.per_second
    spread = crowd.percentile_ms(99) / crowd.percentile_ms(50)
    return [
        Row(
            f"{label}: sequential htmx p50 / p95 (ms), n={options.sequential}",
            f"{sequential.percentile_ms(50):.1f} / {sequential.percentile_ms(95):.1f}",
            f"{sequential_bare.percentile_ms(50):.1f} / {sequential_bare.percentile_ms(95):.1f}",
            f"p50 ratio {seq_ratio:.2f} <= 1.10",
            seq_ratio <= 1.10,
        ),
        Row(
            f"{label}: sequential /healthz p50 / p95 (ms): the HTTP hop alone",
            f"{hop.percentile_ms(50):.1f} / {hop.percentile_ms(95):.1f}",
            "",
            "(reported)",
            None,
        ),
        Row(
            f"{label}: {options.clients} clients, lookups/s (n={options.concurrent})",
            f"{crowd.per_second:.0f}",
            f"{crowd_bare.per_second:.0f}",
            f"ratio {crowd_ratio:.2f} >= 0.90",
            crowd_ratio >= 0.90,
        ),
        Row(
            f"{label}: {options.clients} clients, errors",
            str(crowd.errors),
            str(crowd_bare.errors),
            "0",
            crowd.errors == 0,
        ),
        Row(
            f"{label}: {options.clients} clients, p50 / p99 (ms)",
            f"{crowd.percentile_ms(50):.1f} / {crowd.percentile_ms(99):.1f}",
            f"{crowd_bare.percentile_ms(50):.1f} / {crowd_bare.percentile_ms(99):.1f}",
            f"p99/p50 {spread:.2f} <= 1.5",
            spread <= 1.5,
        ),
        Row(
            f"{label}: upstream connections for {dashboard_lookups} lookups ({calls} calls)",
            str(connections),
            "",
            f"<= {SERVER_THREADS} threads",
            connections <= SERVER_THREADS,
        ),
        Row(
            f"{label}: htmx fragment bytes sent (decoded)",
            f"{fragment_bytes:,} ({fragment_plain:,})",
            "",
            "<= 10 KB",
            fragment_bytes <= 10 * 1024,
        ),
        Row(
            f"{label}: first page load bytes sent (decoded), {1 + len(assets)} files",
            f"{page_bytes:,} ({page_plain:,})",
            "",
            "<= 60 KB",
            page_bytes <= 60 * 1024,
        ),
        Row(
            f"{label}: CPU per lookup (ms): workers / load generator; all cores busy",
            f"{cpu_per_lookup_ms:.1f} / {own_per_lookup_ms:.1f}; {busy:.0%}",
            "",
            "(reported)",
            None,
        ),
        Row(
            f"{label}: peak RSS per worker (MiB)",
            " / ".join(f"{peak / 1024:.0f}" for peak in peaks),
            "",
            "(reported)",
            None,
        ),
    ]


def print_table(rows: list[Row], options: argparse.Namespace) -> None:
    header = Row("measure", "dashboard", "bare stand-in", "target", None)
    widths = [
        max(len(getattr(row, name)) for row in [header, *rows])
        for name in ("measure", "dashboard", "bare", "target")
    ]

    def line(row: Row, verdict: str) -> str:
        cells = [row.measure, row.dashboard, row.bare, row.target]
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + f" | {verdict} |"
        )

    print(f"\nStand-in delay {options.delay * 1000:.0f} ms; gunicorn.conf.py ({SERVER_THREADS} threads).")
    print(line(header, "result"))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|--------|")
    for row in rows:
        print(line(row, "" if row.passed is None else ("PASS" if row.passed else "MISS")))


@contextlib.contextmanager
def postgresql_and_redis() -> Iterator[dict[str, str]]:
    from tests.support.services import postgresql, redis

    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-bench-services-"))
    try:
        with postgresql(workdir) as database_url, redis(workdir) as redis_url:
            yield {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def services_installed() -> bool:
    return (
        bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))
        and shutil.which("redis-server") is not None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="stand-in latency in seconds (0.05)")
    parser.add_argument("--sequential", type=int, default=200, help="sequential htmx lookups (200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--concurrent", type=int, default=1000, help="lookups shared by the clients (1000)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="both (default): SQLite, then PostgreSQL and Redis when installed",
    )
    options = parser.parse_args()
    # Stopped from outside, still stop gunicorn and the servers on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    rows = []
    if options.database in ("sqlite", "both"):
        rows += measure("SQLite", {}, options)
    if options.database == "postgres" or (options.database == "both" and services_installed()):
        with postgresql_and_redis() as services:
            rows += measure("PostgreSQL", services, options)
    elif options.database == "both":
        print("PostgreSQL or Redis is not installed (`make services`): SQLite only.")
    print_table(rows, options)
    print(f"\nWhole run: {time.monotonic() - started:.0f} s. Load generator and servers share this machine.")


if __name__ == "__main__":
    main()
