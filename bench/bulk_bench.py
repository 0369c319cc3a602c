"""Bulk lookups under gunicorn against a stand-in answering in 100 ms: speed, bound, memory, page cost.

    .venv/bin/python bench/bulk_bench.py [--sizes 100,500] [--latency 0.1] [--rounds 3] [--no-browser]
    make bench-bulk

The dashboard runs as `make serve` runs it (gunicorn.conf.py: 2 workers x 8 threads, debug off)
over a SQLite file and, when redis-server is installed, a throwaway Redis, so that a poll may reach
either worker (without it: one worker, the cache in its memory). The stand-in serves generated
customers in a process of its own; the benchmark uses only those that answer at once (no drills).

For each batch size it prints:
- wall time: from the batch being put on record to its end, as the dashboard recorded them
  (BulkLookup.started_at, finished_at), against the ideal ceil(n / pool) x latency (target 1.3x);
- the most requests the stand-in was answering at once (must never exceed the pool);
- the polls the page made meanwhile, once a second as the browser does: their time and size.
Then, for the largest batch: the full page's server time and bytes, the poll fragment with every
row and with none, the CSV; the workers' peak memory (VmHWM); and, unless --no-browser, Chromium
loading the page and sorting and filtering its rows.
"""

import argparse
import contextlib
import math
import multiprocessing
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from customers.align.standin.demo import generated_customer_id, generated_drill  # noqa: E402
from customers.align.standin.server import StubServer  # noqa: E402
from tests.support.servers import (  # noqa: E402
    free_loopback_port,
    inherited_env,
    post_login,
    prepare,
    production_env,
    running,
    staff_user_script,
)

STAND_IN_KEY = "bench-stand-in-key"
USERNAME = "bench-user"
PASSWORD = "bench password, not used anywhere else"
POOL = 8  # ALIGN_BULK_CONCURRENCY's default, which the benchmark runs with
TIMEOUT = 30
CHECKED = re.compile(r'name="checked" value="([0-9a-f]+)"')
HTMX = {"HX-Request": "true"}
CHROMIUM = "/usr/bin/chromium"
TABLE_HEADER = (
    "| batch | wall time (recorded) | ideal | ratio | peak at stand-in | stand-in calls | polls "
    "| poll p50 | poll max | poll bytes max |"
)


# --- The stand-in, in a process of its own ---------------------------------------------------


def run_stand_in(latency: float, generate: int, ports, orders) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    server = StubServer(("127.0.0.1", 0), api_key=STAND_IN_KEY, delay=latency, generate=generate)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    ports.put(server.server_address[1])
    while (order := orders.recv()) != "stop":
        if order == "reset":
            server.peak_in_flight = 0
        orders.send((server.calls, server.peak_in_flight))
    server.shutdown()


@contextlib.contextmanager
def stand_in(latency: float, generate: int) -> Iterator[tuple[str, object]]:
    context = multiprocessing.get_context("fork")
    ports = context.Queue()
    ours, theirs = context.Pipe()
    process = context.Process(target=run_stand_in, args=(latency, generate, ports, theirs), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=10)}", ours
    finally:
        ours.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def stand_in_counts(orders, order: str = "counts") -> tuple[int, int]:
    orders.send(order)
    return orders.recv()


@contextlib.contextmanager
def shared_cache(workdir: Path) -> Iterator[dict[str, str]]:
    """A throwaway Redis when there is one to start, so that either worker can answer a poll."""
    import shutil

    if shutil.which("redis-server") is None:
        yield {}
        return
    from tests.support.services import redis

    with redis(workdir) as url:
        yield {"REDIS_URL": url}


# --- The dashboard under gunicorn --------------------------------------------------------------


def gunicorn_command(single_worker: bool) -> list[str]:
    command = [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py"]
    return [*command, "--workers=1"] if single_worker else command


def worker_pids(master_pid: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmHWM for {pid}")


def wait_until_up(url: str, process) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start-up")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/accounts/login/", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("gunicorn did not answer in time")


def signed_in(url: str) -> requests.Session:
    session = requests.Session()
    answer = post_login(session, url, USERNAME, PASSWORD, timeout=TIMEOUT)
    if answer.url != f"{url}/customers/":
        raise SystemExit(f"the login did not reach the search page ({answer.status_code})")
    return session


def csrf_token(session: requests.Session, url: str) -> str:
    page = session.get(f"{url}/customers/bulk/", timeout=TIMEOUT).text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]


def start_batch(session: requests.Session, url: str, ids: list[str]) -> str:
    """Check the list and start it, as the form does; the batch page's address."""
    pasted = "\n".join(ids)
    form = {"customer_ids": pasted, "csrfmiddlewaretoken": csrf_token(session, url)}
    headers = {"Referer": f"{url}/customers/bulk/"}
    checked = session.post(f"{url}/customers/bulk/", data=form, headers=headers, timeout=TIMEOUT)
    form["checked"] = CHECKED.search(checked.text)[1]
    started = session.post(
        f"{url}/customers/bulk/start/", data=form, headers=headers, timeout=TIMEOUT, allow_redirects=False
    )
    if started.status_code != 303:
        raise SystemExit(f"the batch did not start ({started.status_code})")
    return url + started.headers["Location"]


def poll_until_done(session: requests.Session, batch_url: str) -> list[tuple[float, int]]:
    """Poll once a second, as the page does, until the answer stops polling; (seconds, bytes) each."""
    after, polls = 0, []
    while True:
        time.sleep(1)
        began = time.perf_counter()
        answer = session.get(f"{batch_url}?after={after}", headers=HTMX, timeout=TIMEOUT)
        polls.append((time.perf_counter() - began, len(answer.content)))
        after += answer.text.count('<tr class="bulk-row"')
        if 'hx-trigger="every 1s"' not in answer.text:
            return polls


def recorded_seconds(database: Path, batch_url: str) -> float:
    batch_id = batch_url.rstrip("/").rsplit("/", 1)[-1].replace("-", "")
    with contextlib.closing(sqlite3.connect(database)) as connection:
        started, finished = connection.execute(
            "SELECT started_at, finished_at FROM customers_bulklookup WHERE id = ?", (batch_id,)
        ).fetchone()
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def timed(session: requests.Session, url: str, rounds: int, **options) -> tuple[float, int]:
    """Median seconds of `rounds` GETs, and the answer's bytes."""
    seconds, size = [], 0
    for _ in range(rounds):
        began = time.perf_counter()
        answer = session.get(url, timeout=TIMEOUT, **options)
        seconds.append(time.perf_counter() - began)
        size = len(answer.content)
    return statistics.median(seconds), size


def browser_figures(url: str, batch_url: str) -> dict[str, float]:
    """Chromium: the batch page loaded, then sorted by status and filtered to one status."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/customers/")
        page.goto(batch_url)
        timing = page.evaluate(
            "() => { const t = performance.getEntriesByType('navigation')[0];"
            " return {response: t.responseEnd - t.requestStart, ready: t.domContentLoadedEventEnd,"
            " load: t.loadEventEnd}; }"
        )
        click = (
            "selector => { const started = performance.now(); document.querySelector(selector).click();"
            " return performance.now() - started; }"
        )
        sort = page.evaluate(click, "[data-sort='status']")
        filtered = page.evaluate(click, "[data-filter='pending']")
        everything = page.evaluate(click, "[data-filter='all']")
        browser.close()
    return {
        "response_ms": timing["response"],
        "dom_ready_ms": timing["ready"],
        "load_ms": timing["load"],
        "sort_ms": sort,
        "filter_ms": filtered,
        "unfilter_ms": everything,
    }


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1]) // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return f"{os.cpu_count()} cores ({model}), {memory:,} MiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3, help="batches per size, and GETs per page timed")
    parser.add_argument("--no-browser", action="store_true")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    ids = [generated_customer_id(index) for index in range(max(sizes) * 2) if generated_drill(index) is None]
    print(f"Machine: {machine()}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-bulk-bench-"))
    with stand_in(options.latency, len(ids) * 2) as (align_url, orders), shared_cache(workdir) as cache_env:
        env = production_env(
            workdir,
            align_url=align_url,
            align_key=STAND_IN_KEY,
            inherited=inherited_env(drop_names=("DATABASE_URL", "REDIS_URL")),
            HOME=str(workdir),
            **cache_env,
        )
        prepare(env, staff_user_script(USERNAME, PASSWORD), timeout=120)
        single_worker = not cache_env
        port = free_loopback_port()
        url = f"http://127.0.0.1:{port}"
        shape = (
            "1 worker x 8 threads, cache in its memory" if single_worker else "2 workers x 8 threads, Redis"
        )
        print(f"gunicorn ({shape}) at {url}; stand-in latency {options.latency * 1000:.0f} ms; pool {POOL}")
        command = gunicorn_command(single_worker)
        with running(
            command, log_path=workdir / "gunicorn.log", stop_within=15, env=env | {"PORT": str(port)}
        ) as server:
            wait_until_up(url, server)
            session = signed_in(url)
            # One small batch first: connections, imports and templates warm.
            poll_until_done(session, start_batch(session, url, ids[:POOL]))
            last_batch = ""
            print("\n" + TABLE_HEADER)
            print("|---:" * TABLE_HEADER.count(" | ") + "|---:|")
            for size in sizes:
                for _ in range(options.rounds):
                    calls_before, _ = stand_in_counts(orders, "reset")
                    batch_url = start_batch(session, url, ids[:size])
                    polls = poll_until_done(session, batch_url)
                    calls, peak = stand_in_counts(orders)
                    wall = recorded_seconds(workdir / "dashboard.sqlite3", batch_url)
                    ideal = math.ceil(size / POOL) * options.latency
                    poll_seconds = [seconds for seconds, _ in polls]
                    print(
                        f"| {size} | {wall:.2f} s | {ideal:.2f} s | {wall / ideal:.2f} | {peak} | "
                        f"{calls - calls_before} | {len(polls)} | "
                        f"{statistics.median(poll_seconds) * 1000:.1f} ms | "
                        f"{max(poll_seconds) * 1000:.1f} ms | {max(size for _, size in polls):,} |",
                        flush=True,
                    )
                    last_batch = batch_url

            rows = max(sizes)
            page_seconds, page_bytes = timed(session, last_batch, options.rounds * 3)
            all_rows_seconds, all_rows_bytes = timed(
                session, f"{last_batch}?after=0", options.rounds * 3, headers=HTMX
            )
            no_rows_seconds, no_rows_bytes = timed(
                session, f"{last_batch}?after={rows}", options.rounds * 3, headers=HTMX
            )
            csv_seconds, csv_bytes = timed(session, f"{last_batch}export.csv", options.rounds * 3)
            print(
                f"\nA finished batch of {rows} (median of {options.rounds * 3} GETs, as the client saw them):"
            )
            print(f"- full page:                 {page_seconds * 1000:6.1f} ms, {page_bytes:,} bytes")
            print(f"- poll answer with all rows: {all_rows_seconds * 1000:6.1f} ms, {all_rows_bytes:,} bytes")
            print(f"- poll answer with no rows:  {no_rows_seconds * 1000:6.1f} ms, {no_rows_bytes:,} bytes")
            print(f"- CSV download:              {csv_seconds * 1000:6.1f} ms, {csv_bytes:,} bytes")
            peaks = [peak_rss_mib(pid) for pid in worker_pids(server.pid)]
            print(f"Workers' peak memory (VmHWM): {', '.join(f'{peak:.0f} MiB' for peak in peaks)}")
            if not options.no_browser and Path(CHROMIUM).exists():
                figures = browser_figures(url, last_batch)
                print(
                    f"Chromium, the page of {rows} rows: response {figures['response_ms']:.0f} ms, "
                    f"DOM ready {figures['dom_ready_ms']:.0f} ms, load {figures['load_ms']:.0f} ms; "
                    f"sort by status {figures['sort_ms']:.1f} ms, filter to one status "
                    f"{figures['filter_ms']:.1f} ms, back to all {figures['unfilter_ms']:.1f} ms"
                )


if __name__ == "__main__":
    main()
