"""The dashboard as production serves it (gunicorn, threaded workers) under concurrent lookups.

gunicorn runs in its own process over a fresh SQLite file, pointed at the Align stand-in that runs
in this process with injected latency, so many requests are in flight at once in every worker.
Twenty logged-in clients fire 200 lookups from twenty threads; every answer must be a 200 for the
customer that was asked for, with no other customer's data in it. Throughput and latency are
printed (`pytest -s`), never asserted.

No `django_db` mark: the test never uses the ORM in this process, so pytest-django keeps its test
database closed to it; the server and the setup commands use their own database file.
"""

import logging
import re
import sqlite3
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass

import pytest
import requests
from django.utils.html import escape

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.server import serving
from tests.support.servers import (
    free_loopback_port,
    gunicorn_command,
    login_page_answers,
    post_login,
    prepare,
    production_env,
    running,
    staff_user_script,
    wait_until_answers,
)

STAND_IN_KEY = "load-test-stand-in-key"
STAND_IN_DELAY_SECONDS = 0.05
USERNAME = "load-tester"
PASSWORD = "load test password, not used anywhere else"
CLIENTS = 20
# A login hashes the password (PBKDF2, about 0.3 s of CPU by design). Twenty at once share the
# cores and all finish together, each taking as long as all of them (over 8 s on a busy 2-core
# machine); a few at a time keeps every login call far from the timeout in the same total time.
LOGINS_AT_ONCE = 4
LOOKUPS = 200
WORKERS = 2
THREADS_PER_WORKER = 8
HTTP_TIMEOUT_SECONDS = 10
READY_WITHIN_SECONDS = 15
STOP_WITHIN_SECONDS = 10


@dataclass(frozen=True)
class Lookup:
    demo_id: DemoId
    fragment: bool
    status: int | str  # the exception's name when no answer came
    seconds: float
    body: str


@pytest.fixture
def slow_stand_in(caplog):
    # Its access log (a line per call) would bury the figures the test prints.
    caplog.set_level(logging.WARNING, logger="customers.align.standin.server")
    with serving(api_key=STAND_IN_KEY, delay=STAND_IN_DELAY_SECONDS) as server:
        yield server


@pytest.fixture
def server_env(slow_stand_in, tmp_path) -> dict[str, str]:
    """The production settings module, fed a test environment, over a migrated database with a user."""
    env = production_env(
        tmp_path,
        align_url=slow_stand_in.base_url,
        align_key=STAND_IN_KEY,
        ALIGN_API_TIMEOUT="5",
    )
    prepare(env, staff_user_script(USERNAME, PASSWORD))
    return env


@pytest.fixture
def gunicorn_url(server_env, tmp_path):
    """The dashboard under gunicorn; stopped, with its workers, whatever the test does."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gunicorn.log"
    command = gunicorn_command(
        port, f"--workers={WORKERS}", f"--threads={THREADS_PER_WORKER}", "--graceful-timeout=5"
    )
    with running(command, log_path=log_path, env=server_env, stop_within=STOP_WITHIN_SECONDS) as server:
        wait_until_answers(
            server, login_page_answers(url), log_path, within=READY_WITHIN_SECONDS, name="gunicorn"
        )
        yield url


def logged_in_session(url: str) -> requests.Session:
    session = requests.Session()
    answer = post_login(session, url, USERNAME, PASSWORD, timeout=HTTP_TIMEOUT_SECONDS)
    assert answer.status_code == 200
    assert answer.url == f"{url}/customers/", "the login did not lead to the search page"
    # Keep the cookies, drop the connection: gunicorn closes a connection idle past its keep-alive
    # (2 s) without looking for a request that has just arrived on it, and the client sees a reset
    # (browsers retry that; requests does not). The lookups start on fresh connections instead.
    session.close()
    return session


def look_up(session: requests.Session, url: str, demo_id: DemoId, *, fragment: bool) -> Lookup:
    headers = {"HX-Request": "true"} if fragment else {}
    started = time.perf_counter()
    try:
        answer = session.get(f"{url}/customers/{demo_id}/", headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        return Lookup(demo_id, fragment, type(error).__name__, time.perf_counter() - started, "")
    return Lookup(demo_id, fragment, answer.status_code, time.perf_counter() - started, answer.text)


def client_lookups(session: requests.Session, url: str, first: int) -> list[Lookup]:
    """One client's share of the lookups, in turn: every demo customer, as pages and fragments."""
    demo_ids = list(DemoId)
    return [
        look_up(session, url, demo_ids[number % len(demo_ids)], fragment=number % 2 == 1)
        for number in range(first, LOOKUPS, CLIENTS)
    ]


def what_is_wrong(lookup: Lookup) -> str | None:
    """Why this answer is not the page or fragment of the customer asked for, or None."""
    if lookup.status != 200:
        return f"status {lookup.status}"
    own = DEMO_CUSTOMERS[lookup.demo_id]
    if escape(own["email"]) not in lookup.body:
        return "its own e-mail is missing"
    # Full pages link every demo customer by ID, so look for it where the card shows it.
    if not re.search(rf'id="customer-id-value"[^>]*>\s*{lookup.demo_id}\s*<', lookup.body):
        return "its own customer ID is missing from the card"
    # Two demo customers share an address on purpose (a search by e-mail with several matches).
    others = [
        body["email"]
        for demo_id, body in DEMO_CUSTOMERS.items()
        if demo_id != lookup.demo_id and body["email"] != own["email"]
    ]
    if mixed_in := [email for email in others if escape(email) in lookup.body]:
        return f"another customer's e-mail is in it: {mixed_in}"
    if ("<html" in lookup.body) == lookup.fragment:
        return "a full page where a fragment was asked for, or the other way round"
    return None


def percentile_ms(seconds: list[float], percent: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1] * 1000


def test_concurrent_lookups_each_show_their_own_customer(gunicorn_url, slow_stand_in, server_env):
    login_started = time.perf_counter()
    with ThreadPoolExecutor(LOGINS_AT_ONCE) as pool:
        sessions = list(pool.map(logged_in_session, [gunicorn_url] * CLIENTS))
    login_seconds = time.perf_counter() - login_started
    with ThreadPoolExecutor(CLIENTS) as pool:
        started = time.perf_counter()
        shares = pool.map(client_lookups, sessions, [gunicorn_url] * CLIENTS, range(CLIENTS))
        lookups = [lookup for share in shares for lookup in share]
        elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()

    seconds = [lookup.seconds for lookup in lookups]
    print(
        f"\nload: {CLIENTS} logins in {login_seconds:.2f} s; {len(lookups)} lookups from {CLIENTS} "
        f"threads in {elapsed:.2f} s = {len(lookups) / elapsed:.0f} lookups/s; "
        f"p50 {percentile_ms(seconds, 50):.0f} ms, p95 {percentile_ms(seconds, 95):.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms (stand-in delay {STAND_IN_DELAY_SECONDS * 1000:.0f} ms, "
        f"gunicorn {WORKERS} workers x {THREADS_PER_WORKER} threads); "
        f"the stand-in answered {slow_stand_in.calls} calls"
    )
    assert len(lookups) == LOOKUPS
    wrong = [
        (str(lookup.demo_id), lookup.fragment, why) for lookup in lookups if (why := what_is_wrong(lookup))
    ]
    assert not wrong, f"{len(wrong)} of {len(lookups)} lookups wrong (id, fragment, why), e.g. {wrong[:5]}"
    # Twenty threads writing audit rows into one SQLite file: none may be lost or left unfinished.
    assert audit_outcomes(server_env["DASHBOARD_DB_PATH"]) == {("lookup", "found"): LOOKUPS}


def audit_outcomes(database_path: str) -> dict[tuple[str, str], int]:
    with closing(sqlite3.connect(database_path)) as database:
        rows = database.execute(
            "SELECT action, outcome, COUNT(*) FROM customers_auditevent GROUP BY action, outcome"
        ).fetchall()
    return {(action, outcome): count for action, outcome, count in rows}
