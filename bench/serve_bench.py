"""The dashboard as `make serve` runs it, beside Django's floor and calling the stand-in directly.

    .venv/bin/python bench/serve_bench.py [--delay 0.05] [--database sqlite|postgres|both]

gunicorn starts with the root gunicorn.conf.py (its workers and threads as `make serve` gets them,
read back with `gunicorn --print-config`) on a free loopback port, over a fresh database, pointed
at the Align stand-in with injected latency. Its settings are bench.floor_settings: the production
settings with one route more, Django's floor (bench/floor.py), a lookup that does only what a
lookup must and returns the dashboard's own fragment, captured once at the start. So the floor and
the dashboard run in the same workers, settings and middleware. The stand-in runs in its own
process (so the load generator's threads do not share its interpreter lock) and listens twice:
once for the dashboard and the floor, once for the bare path, so the upstream connections of the
gunicorn workers are counted alone. Each figure is measured in the same run for all three:

1. sequential htmx lookups from one logged-in session, each followed by the same customer from
   the floor and then directly with `requests`: p50 and p95; then as many sequential requests of
   /healthz, the HTTP hop through gunicorn alone, which no lookup can go below;
2. 16 concurrent clients, each with its own session, in rounds that take the dashboard, the floor
   and the bare path in turn: throughput, errors, p50 and p99, and the CPU each used per lookup
   (the gunicorn workers' for the dashboard and the floor, the stand-in's for the bare path, from
   /proc/<pid>/stat), and the load generator's own;
3. the connections the workers' stand-in accepted from gunicorn's start to the end of (2);
4. bytes of the htmx fragment and of the first page load (HTML, CSS and JS, gzip as WhiteNoise
   serves it);
5. the peak RSS (VmHWM) of each gunicorn worker.

Then again on a throwaway PostgreSQL and Redis (tests/support/services.py) when `--database` is `both`
(the default, when their programs are installed) or `postgres`. Prints a table with each target of
issue #21; asserts nothing (figures and analysis in bench/README.md).
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
HTTP_TIMEOUT_SECONDS = 10
READY_WITHIN_SECONDS = 30
LOGINS_AT_ONCE = 4
WARM_UP_LOOKUPS = 40
STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"')
DEMO_IDS = list(DemoId)
# Issue #21's targets, measured with the stand-in answering in 50 ms.
SEQUENTIAL_RATIO_AT_MOST = 1.15  # dashboard p50 / bare p50
THROUGHPUT_RATIO_AT_LEAST = 0.55  # dashboard lookups/s / bare lookups/s, from the same clients
SPREAD_AT_MOST = 1.6  # dashboard p99 / p50 at 16 clients
CPU_OVER_FLOOR_AT_MOST = 1.5  # dashboard CPU per lookup / the floor's
FRAGMENT_AT_MOST_BYTES = 10 * 1024
FIRST_LOAD_AT_MOST_BYTES = 60 * 1024  # issue #11's
FLOOR_SETTINGS = "bench.floor_settings"


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

    @property
    def pid(self) -> int:
        return self._process.pid


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
    """Production settings (debug off) fed a bench environment, over a migrated database with a user.

    Nothing of the dashboard's is set but what docs/operations.md, "Deploying", asks of every
    instance, on loopback (tests/support/servers.py, deployment_variables: the secret and audit
    keys, the allowed host, the database file and STATIC_ROOT in the run's folder, HTTPS and 2FA
    off), the Align variables, and DATABASE_URL and REDIS_URL in the PostgreSQL pass.
    """
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


def server_shape(env: dict[str, str]) -> tuple[int, int]:
    """(workers, threads) gunicorn.conf.py gives gunicorn in this environment, as gunicorn reads it."""
    printed = subprocess.run(  # noqa: S603  (our own gunicorn)
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "--print-config"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    values = dict(re.findall(r"^(workers|threads) += (\d+)$", printed, flags=re.MULTILINE))
    return int(values["workers"]), int(values["threads"])


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
def gunicorn(
    env: dict[str, str], log_path: Path, probe_headers: dict[str, str] | None = None
) -> Iterator[Gunicorn]:
    """`make serve`'s last step: gunicorn with the root gunicorn.conf.py, on a free port.

    Ready when the login page answers 200 to a request with `probe_headers` (behind nginx, the
    X-Forwarded-Proto it would send)."""
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
                if (
                    requests.get(f"{url}/accounts/login/", headers=probe_headers, timeout=1).status_code
                    == 200
                ):
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


@dataclass(frozen=True)
class Contender:
    """One way to look a customer up: the dashboard, Django's floor, or the stand-in called directly."""

    name: str
    base_url: str
    path: str  # with {customer_id}
    headers: dict[str, str]
    sessions: list[requests.Session]

    def url(self, number: int) -> str:
        return self.base_url + self.path.format(customer_id=DEMO_IDS[number % len(DEMO_IDS)])

    def look_up(self, timings: Timings, client: int, number: int) -> None:
        timed_get(timings, self.sessions[client], self.url(number), self.headers)


def concurrently(contender: Contender, total: int, timings: Timings) -> None:
    """`total` lookups shared by one thread per session, each thread's in turn, added to `timings`."""
    clients = len(contender.sessions)

    def client(index: int) -> None:
        for number in range(index, total, clients):
            contender.look_up(timings, index, number)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    timings.elapsed += time.perf_counter() - started


@dataclass
class Crowd:
    """One contender's lookups from all clients at once, over every round, and the CPU they took."""

    timings: Timings = field(default_factory=Timings)
    server_cpu: float = 0.0  # the gunicorn workers', or for the bare path the stand-in's
    own_cpu: float = 0.0
    machine_busy: int = 0
    machine_total: int = 0

    def per_lookup_ms(self, cpu_seconds_used: float) -> float:
        return cpu_seconds_used / len(self.timings.seconds) * 1000

    @property
    def busy(self) -> float:
        return self.machine_busy / self.machine_total


def crowd_round(contender: Contender, total: int, crowd: Crowd, server_pids: list[int]) -> None:
    """`total` lookups from every client at once, added to `crowd` with the CPU they took."""
    server_before, own_before, machine_before = (
        cpu_seconds(server_pids),
        time.process_time(),
        machine_busy_and_total(),
    )
    concurrently(contender, total, crowd.timings)
    machine_after = machine_busy_and_total()
    crowd.server_cpu += cpu_seconds(server_pids) - server_before
    crowd.own_cpu += time.process_time() - own_before
    crowd.machine_busy += machine_after[0] - machine_before[0]
    crowd.machine_total += machine_after[1] - machine_before[1]


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


def capture_fragments(session: requests.Session, url: str, folder: Path) -> None:
    """The dashboard's own htmx fragment of each demo customer, for the floor to return verbatim."""
    for customer_id in DEMO_IDS:
        answer = session.get(
            f"{url}/customers/{customer_id}/", headers={"HX-Request": "true"}, timeout=HTTP_TIMEOUT_SECONDS
        )
        if answer.status_code != 200:
            raise SystemExit(f"the dashboard answered {answer.status_code} for {customer_id}")
        (folder / f"{customer_id}.html").write_bytes(answer.content)


# --- One run ------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    floor: str
    dashboard: str
    bare: str
    target: str
    passed: bool | None


def measure(label: str, services: dict[str, str], options: argparse.Namespace) -> list[Row]:
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-bench-"))
    try:
        with stand_ins(options.delay) as stand_in:
            fragments = workdir / "floor-fragments"
            fragments.mkdir()
            env = server_env(workdir, stand_in.dashboard_url, services) | {
                "DJANGO_SETTINGS_MODULE": FLOOR_SETTINGS,
                "BENCH_FLOOR_FRAGMENTS": str(fragments),
            }
            workers, threads = server_shape(env)
            with gunicorn(env, workdir / "gunicorn.log") as server:
                return measure_server(
                    f"{label} ({workers} x {threads})",
                    server,
                    stand_in,
                    options,
                    workers * threads,
                    fragments,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure_server(
    label: str,
    server: Gunicorn,
    stand_in: StandIns,
    options: argparse.Namespace,
    threads: int,
    fragments: Path,
) -> list[Row]:
    """Every figure of one server; `threads` is how many lookups it serves at once (workers x
    threads), `fragments` the folder the floor reads the dashboard's fragments from."""
    url = server.url
    print(f"[{label}] gunicorn at {url}, workers {server.worker_pids()}; logging in", flush=True)
    with ThreadPoolExecutor(LOGINS_AT_ONCE) as pool:
        sessions = list(pool.map(logged_in_session, [url] * options.clients))
    htmx = {"HX-Request": "true"}
    dashboard = Contender("dashboard", url, "/customers/{customer_id}/", htmx, sessions)
    floor = Contender("floor", url, "/bench/floor/{customer_id}/", htmx, sessions)
    bare = Contender(
        "bare", stand_in.bare_url, "/v0/customers/{customer_id}", {}, [bare_session() for _ in sessions]
    )
    contenders = (floor, dashboard, bare)

    print(f"[{label}] warming up", flush=True)
    concurrently(dashboard, WARM_UP_LOOKUPS, Timings())
    # After the dashboard's warm-up, so each fragment carries a full "Your recent lookups", as
    # every fragment measured after it does.
    capture_fragments(sessions[0], url, fragments)
    for contender in (floor, bare):
        concurrently(contender, WARM_UP_LOOKUPS, Timings())

    print(
        f"[{label}] {options.sequential} sequential htmx lookups, each beside the floor and bare", flush=True
    )
    sequential = {contender.name: Timings() for contender in contenders}
    for number in range(options.sequential):
        for contender in (dashboard, floor, bare):
            contender.look_up(sequential[contender.name], 0, number)
    # Under every lookup: a request through gunicorn that Django answers in its sixth middleware
    # (dashboard/ops/health.py), with no session, database, template or Align call.
    hop = Timings()
    for _ in range(options.sequential):
        timed_get(hop, sessions[0], f"{url}/healthz", {})
    for session in sessions:
        session.close()  # idle past gunicorn's keep-alive while the others ran

    print(
        f"[{label}] {options.concurrent} lookups each from {options.clients} clients, "
        f"in {options.rounds} rounds of the dashboard, the floor and bare in turn",
        flush=True,
    )
    workers = server.worker_pids()
    pids = {"dashboard": workers, "floor": workers, "bare": [stand_in.pid]}
    crowds = {contender.name: Crowd() for contender in contenders}
    for round_number in range(options.rounds):
        share = options.concurrent // options.rounds + (round_number < options.concurrent % options.rounds)
        for contender in (dashboard, floor, bare):
            crowd_round(contender, share, crowds[contender.name], pids[contender.name])
    calls, connections = stand_in.counts()["dashboard"]

    fragment_bytes, fragment = wire_bytes(sessions[0], dashboard.url(0), htmx)
    floor_bytes, floor_fragment = wire_bytes(sessions[0], floor.url(0), htmx)
    page_bytes, page = wire_bytes(sessions[0], f"{url}/customers/")
    page_plain = len(page)
    assets = sorted(set(STATIC_URL.findall(page.decode())))
    for asset in assets:
        sent, body = wire_bytes(sessions[0], f"{url}{asset}")
        page_bytes += sent
        page_plain += len(body)
    peaks = [peak_rss_kib(pid) for pid in server.worker_pids()]
    for contender in contenders:
        for session in contender.sessions:
            session.close()

    p50 = {name: timings.percentile_ms(50) for name, timings in sequential.items()}
    throughput = {name: crowd.timings.per_second for name, crowd in crowds.items()}
    spread = {
        name: crowd.timings.percentile_ms(99) / crowd.timings.percentile_ms(50)
        for name, crowd in crowds.items()
    }
    cpu = {name: crowd.per_lookup_ms(crowd.server_cpu) for name, crowd in crowds.items()}
    own_cpu = {name: crowd.per_lookup_ms(crowd.own_cpu) for name, crowd in crowds.items()}

    def each(text) -> tuple[str, str, str]:
        return tuple(text(name) for name in ("floor", "dashboard", "bare"))

    def row(measure_text: str, cells: tuple[str, str, str], target: str, passed: bool | None) -> Row:
        return Row(f"{label}: {measure_text}", *cells, target, passed)

    sequential_ratio = p50["dashboard"] / p50["bare"]
    throughput_ratio = throughput["dashboard"] / throughput["bare"]
    cpu_ratio = cpu["dashboard"] / cpu["floor"]
    errors = {name: crowd.timings.errors + sequential[name].errors for name, crowd in crowds.items()}
    return [
        row(
            f"sequential htmx p50 / p95 (ms), n={options.sequential}",
            each(lambda name: f"{p50[name]:.1f} / {sequential[name].percentile_ms(95):.1f}"),
            f"dashboard/bare p50 {sequential_ratio:.2f} <= {SEQUENTIAL_RATIO_AT_MOST} "
            f"(floor {p50['floor'] / p50['bare']:.2f})",
            sequential_ratio <= SEQUENTIAL_RATIO_AT_MOST,
        ),
        row(
            "sequential /healthz p50 / p95 (ms): the HTTP hop alone",
            ("", f"{hop.percentile_ms(50):.1f} / {hop.percentile_ms(95):.1f}", ""),
            "(reported)",
            None,
        ),
        row(
            f"{options.clients} clients, lookups/s (n={options.concurrent})",
            each(lambda name: f"{throughput[name]:.0f}"),
            f"dashboard/bare {throughput_ratio:.2f} >= {THROUGHPUT_RATIO_AT_LEAST} "
            f"(floor {throughput['floor'] / throughput['bare']:.2f})",
            throughput_ratio >= THROUGHPUT_RATIO_AT_LEAST,
        ),
        row(
            "errors (sequential and clients)",
            each(lambda name: str(errors[name])),
            "0",
            errors["dashboard"] + errors["floor"] == 0,
        ),
        row(
            f"{options.clients} clients, p50 / p99 (ms)",
            each(
                lambda name: (
                    f"{crowds[name].timings.percentile_ms(50):.1f} / "
                    f"{crowds[name].timings.percentile_ms(99):.1f}"
                )
            ),
            f"dashboard p99/p50 {spread['dashboard']:.2f} <= {SPREAD_AT_MOST} (floor {spread['floor']:.2f})",
            spread["dashboard"] <= SPREAD_AT_MOST,
        ),
        row(
            "CPU per lookup (ms): gunicorn workers; bare: the stand-in",
            each(lambda name: f"{cpu[name]:.1f}"),
            f"dashboard/floor {cpu_ratio:.2f} <= {CPU_OVER_FLOOR_AT_MOST}",
            cpu_ratio <= CPU_OVER_FLOOR_AT_MOST,
        ),
        row(
            "load generator's CPU per lookup (ms); all cores busy",
            each(lambda name: f"{own_cpu[name]:.1f}; {crowds[name].busy:.0%}"),
            "(reported)",
            None,
        ),
        row(
            f"upstream connections for {calls:,} calls to the stand-in",
            ("", str(connections), ""),
            f"<= {threads} threads (dashboard and floor share a pool)",
            connections <= threads,
        ),
        row(
            "htmx fragment bytes sent (decoded)",
            (
                f"{floor_bytes:,} ({len(floor_fragment):,})",
                f"{fragment_bytes:,} ({len(fragment):,})",
                "",
            ),
            f"<= {FRAGMENT_AT_MOST_BYTES // 1024} KB",
            fragment_bytes <= FRAGMENT_AT_MOST_BYTES,
        ),
        row(
            f"first page load bytes sent (decoded), {1 + len(assets)} files",
            ("", f"{page_bytes:,} ({page_plain:,})", ""),
            f"<= {FIRST_LOAD_AT_MOST_BYTES // 1024} KB",
            page_bytes <= FIRST_LOAD_AT_MOST_BYTES,
        ),
        row(
            "peak RSS per worker (MiB)",
            ("", " / ".join(f"{peak / 1024:.0f}" for peak in peaks), ""),
            "(reported)",
            None,
        ),
    ]


def print_table(rows: list[Row], options: argparse.Namespace) -> None:
    header = Row("measure", "floor", "dashboard", "bare stand-in", "target", None)
    names = ("measure", "floor", "dashboard", "bare", "target")
    widths = [max(len(getattr(row, name)) for row in [header, *rows]) for name in names]

    def line(row: Row, verdict: str) -> str:
        cells = [getattr(row, name) for name in names]
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
            + f" | {verdict} |"
        )

    print(
        f"\nStand-in delay {options.delay * 1000:.0f} ms; gunicorn.conf.py, workers x threads as labelled; "
        "the floor is bench/floor.py in the same workers."
    )
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
    parser.add_argument(
        "--concurrent",
        type=int,
        default=1000,
        help="lookups shared by the clients, for each of the three (1000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="rounds the clients' lookups are split into, the three in turn (4)",
    )
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
