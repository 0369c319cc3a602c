"""What 200 open pages of pending customers cost one instance while they watch for changes.

    .venv/bin/python bench/poll_bench.py [--pages 200] [--seconds 30] [--rounds 10]

Each open page of a pending customer asks `/customers/<id>/kyc-changes/?after=<n>` every 10 s
while its tab is visible (static/js/watch.js). This runs the dashboard as `make serve` does
(gunicorn.conf.py: 2 workers x 8 threads, debug off, SQLite) with webhooks on, stores one
webhook for the customer through the real receiver, signs in a few sessions, and then:

1. steady: every page asks every 10 s, at a random phase, for `--seconds`: the load 200 open
   pages really make (20 requests/s); p50/p95 of a poll, errors, and the workers' CPU per poll;
2. burst: all pages ask at the same instant, `--rounds` times (pages opened together, timers in
   step): p50/p95 of a poll and how long the instance takes to answer them all;
3. ceiling: every page asks again as soon as it has its answer, for 10 s: requests/s;
4. in this process, through Django's test client: the queries one poll makes, by table.

Every poll must answer 204 (nothing newer), without calling Align: the stand-in's call count is
printed. Prints figures; asserts nothing (issue #13; figures in bench/README.md).
"""

import argparse
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.serve_bench import (  # noqa: E402
    PASSWORD,
    STAND_IN_KEY,
    USERNAME,
    Timings,
    cpu_seconds,
    gunicorn,
    logged_in_session,
    machine_busy_and_total,
)
from customers.align.standin.demo import DemoId  # noqa: E402
from customers.align.standin.server import serving  # noqa: E402
from customers.align.standin.webhooks import kyc_updated_envelope, sign  # noqa: E402
from tests.support.servers import inherited_env, prepare, production_env, staff_user_script  # noqa: E402

GRACE = str(DemoId.FORM_STARTED)
POLL_SECONDS = 10
SESSIONS = 8
CEILING_SECONDS = 10
HTTP_TIMEOUT_SECONDS = 10
# What watch.js sends with every poll.
POLL_HEADERS = {"HX-Request": "true", "X-Automatic-Request": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="open pages polling (200)")
    parser.add_argument("--seconds", type=int, default=30, help="length of the steady run (30)")
    parser.add_argument("--rounds", type=int, default=10, help="bursts of every page at once (10)")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-poll-bench-"))
    logging.disable(logging.CRITICAL)  # the stand-in's line per request is not what is measured
    try:
        with serving(api_key=STAND_IN_KEY) as stand_in:
            env = production_env(
                workdir,
                align_url=stand_in.base_url,
                align_key=STAND_IN_KEY,
                inherited=inherited_env(drop_names=("DATABASE_URL", "REDIS_URL")),
                ALIGN_WEBHOOKS_ENABLED="1",
                HOME=str(workdir),
            )
            prepare(env, staff_user_script(USERNAME, PASSWORD), timeout=120)
            with gunicorn(env, workdir / "gunicorn.log") as server:
                measure_server(server, stand_in, options)
        queries_per_poll()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure_server(server, stand_in, options: argparse.Namespace) -> None:
    url = server.url
    after = store_one_webhook(url)
    with ThreadPoolExecutor(4) as pool:
        sessions = list(pool.map(logged_in_session, [url] * SESSIONS))
    pages = []
    for number in range(options.pages):
        page = requests.Session()
        page.cookies.update(sessions[number % SESSIONS].cookies)
        page.headers.update(POLL_HEADERS)
        pages.append(page)
    poll_url = f"{url}/customers/{GRACE}/kyc-changes/?after={after}"
    workers = server.worker_pids()
    calls_before = stand_in.calls
    print(f"gunicorn at {url}, workers {workers}; {options.pages} pages ask {poll_url.removeprefix(url)}")

    steady, cpu, busy = run_steady(pages, poll_url, options.seconds, workers)
    print(
        f"steady, each page every {POLL_SECONDS} s for {options.seconds} s: {len(steady.seconds)} polls, "
        f"{steady.per_second:.1f}/s, {percentiles(steady)}, errors {steady.errors}; "
        f"workers' CPU {cpu:.2f} ms a poll; all cores busy {busy:.0%}"
    )

    drains, bursts = [], Timings()
    for _ in range(options.rounds):
        drains.append(run_burst(pages, poll_url, bursts))
    drains.sort()
    print(
        f"burst, all {options.pages} pages at once, {options.rounds} times: {percentiles(bursts)}, "
        f"errors {bursts.errors}; all answered within {drains[len(drains) // 2] * 1000:.0f} ms "
        f"(median burst), {drains[-1] * 1000:.0f} ms (slowest)"
    )

    ceiling = run_ceiling(pages, poll_url)
    print(
        f"ceiling, every page asking again at once for {CEILING_SECONDS} s: "
        f"{ceiling.per_second:.0f} polls/s, {percentiles(ceiling)}, errors {ceiling.errors}"
    )
    print(
        f"calls to Align during the polls: {stand_in.calls - calls_before}; errors: {dict(ERRORS) or 'none'}"
    )
    for page in pages + sessions:
        page.close()


def percentiles(timings: Timings) -> str:
    return f"p50 {timings.percentile_ms(50):.1f} ms, p95 {timings.percentile_ms(95):.1f} ms"


def store_one_webhook(url: str) -> int:
    """One customer.kycs.updated delivery through the receiver, as Align would send it."""
    from customers.align.standin.demo import DEMO_CUSTOMERS

    body = json.dumps(kyc_updated_envelope(DEMO_CUSTOMERS[GRACE])).encode()
    answer = requests.post(
        f"{url}/webhooks/align/",
        data=body,
        headers={"Content-Type": "application/json", "x-hmac-signature": sign(body, STAND_IN_KEY)},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if answer.json() != {"status": "accepted"}:
        raise SystemExit(f"the webhook was not accepted: {answer.status_code} {answer.text}")
    return 1  # the first event of a fresh database


# What went wrong, when something did: a status other than 204, or the exception's name.
ERRORS: Counter = Counter()


def poll(timings: Timings, page: requests.Session, poll_url: str) -> None:
    started = time.perf_counter()
    try:
        answer = page.get(poll_url, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as error:
        answer = None
        ERRORS[f"{type(error).__name__}: {str(error)[-80:]}"] += 1
    timings.seconds.append(time.perf_counter() - started)
    if answer is None or answer.status_code != 204:
        timings.errors += 1
        if answer is not None:
            ERRORS[f"HTTP {answer.status_code}"] += 1


def run_steady(pages, poll_url: str, seconds: int, workers: list[int]) -> tuple[Timings, float, float]:
    timings = Timings()
    end = time.monotonic() + seconds

    def page_loop(page: requests.Session) -> None:
        next_at = time.monotonic() + random.uniform(0, POLL_SECONDS)  # noqa: S311  (a phase, not a secret)
        while next_at < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            poll(timings, page, poll_url)
            next_at += POLL_SECONDS

    cpu_before, machine_before = cpu_seconds(workers), machine_busy_and_total()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(pages)) as pool:
        list(pool.map(page_loop, pages))
    timings.elapsed = time.perf_counter() - started
    machine_after = machine_busy_and_total()
    busy = (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1])
    cpu_per_poll_ms = (cpu_seconds(workers) - cpu_before) / max(1, len(timings.seconds)) * 1000
    return timings, cpu_per_poll_ms, busy


def run_burst(pages, poll_url: str, timings: Timings) -> float:
    """Every page asks at the same instant; how long until the last one has its answer.

    Each on a new connection, as a page asking every 10 s does: gunicorn keeps an idle one 2 s.
    Reusing the last burst's would race gunicorn closing it (a reset a browser retries unseen).
    """
    for page in pages:
        page.close()
    barrier = threading.Barrier(len(pages) + 1)

    def one(page: requests.Session) -> None:
        barrier.wait()
        poll(timings, page, poll_url)

    with ThreadPoolExecutor(len(pages)) as pool:
        futures = [pool.submit(one, page) for page in pages]
        barrier.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        return time.perf_counter() - started


def run_ceiling(pages, poll_url: str) -> Timings:
    timings = Timings()
    end = time.monotonic() + CEILING_SECONDS

    def page_loop(page: requests.Session) -> None:
        while time.monotonic() < end:
            poll(timings, page, poll_url)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(pages)) as pool:
        list(pool.map(page_loop, pages))
    timings.elapsed = time.perf_counter() - started
    return timings


def queries_per_poll() -> None:
    """The SQL of one poll, after a first one (as every poll after a page's first)."""
    from bench.in_process import set_up_django

    os.environ["ALIGN_WEBHOOKS_ENABLED"] = "1"
    with tempfile.TemporaryDirectory() as scratch, serving(api_key=STAND_IN_KEY) as stand_in:
        set_up_django(
            stand_in,
            database_path=str(Path(scratch) / "db.sqlite3"),
            static_root=Path(scratch) / "static",
            silence_up_to=logging.CRITICAL,
        )
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from bench.in_process import prepare_database
        from customers.models import KycWebhookEvent

        prepare_database()
        user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
        user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
        event = KycWebhookEvent.objects.create(
            delivery_key="0" * 64,
            customer_id=GRACE,
            event_created_at="2026-11-25T14:02:11Z",
            kyc_status="pending",
        )
        client = Client()
        client.force_login(user)
        poll_url = f"/customers/{GRACE}/kyc-changes/?after={event.pk}"
        client.get(poll_url, headers=POLL_HEADERS)
        with CaptureQueriesContext(connection) as queries:
            status = client.get(poll_url, headers=POLL_HEADERS).status_code
        tables = Counter(
            next(iter(re.findall(r'FROM "(\w+)"', query["sql"])), "other")
            for query in queries.captured_queries
        )
        by_table = ", ".join(f"{table} {count}" for table, count in sorted(tables.items()))
        print(f"queries in one poll (status {status}): {len(queries.captured_queries)}: {by_table}")
        plan = connection.cursor().execute(
            "EXPLAIN QUERY PLAN SELECT id FROM customers_kycwebhookevent WHERE customer_id = %s AND id > %s "
            "ORDER BY id DESC LIMIT 1",
            [GRACE.replace("-", ""), event.pk],
        )
        print("SQLite's plan for the events query:", "; ".join(row[-1] for row in plan.fetchall()))


if __name__ == "__main__":
    main()
