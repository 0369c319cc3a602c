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
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.utils.html import escape

from customers.stub import DEMO_CUSTOMERS, DemoId, serving

PROJECT_DIR = Path(__file__).resolve().parent.parent
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
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CREATE_STAFF_USER = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
user = get_user_model().objects.create_user({USERNAME!r}, password={PASSWORD!r})
user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
"""


@dataclass(frozen=True)
class Lookup:
    demo_id: DemoId
    fragment: bool
    status: int | str  # the exception's name when no answer came
    seconds: float
    body: str


def run_quietly(command: list[str], *, env: dict[str, str], timeout: float) -> None:
    """Run a command from the project directory; fail the test with its output if it fails."""
    result = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command[1:]} failed:\n{result.stdout}\n{result.stderr}"


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def slow_stand_in(caplog):
    # Its access log (a line per call) would bury the figures the test prints.
    caplog.set_level(logging.WARNING, logger="customers.stub")
    with serving(api_key=STAND_IN_KEY, delay=STAND_IN_DELAY_SECONDS) as server:
        yield server


@pytest.fixture
def server_env(slow_stand_in, tmp_path) -> dict[str, str]:
    """The production settings module, fed a test environment, over a migrated database with a user."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "ALIGN_", "DASHBOARD_"))
    }
    env = inherited | {
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "load-test-only-secret-key-not-used-anywhere-else",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DASHBOARD_DB_PATH": str(tmp_path / "dashboard.sqlite3"),
        "DASHBOARD_STATIC_ROOT": str(tmp_path / "staticfiles"),
        "ALIGN_API_BASE_URL": slow_stand_in.base_url,
        "ALIGN_API_KEY": STAND_IN_KEY,
        "ALIGN_API_TIMEOUT": "5",
        # Plain HTTP on loopback, password sign-in: the load is on lookups, not on TLS or 2FA.
        "DJANGO_HTTPS_ONLY": "0",
        "DASHBOARD_REQUIRE_2FA": "0",
    }
    run_quietly([sys.executable, "manage.py", "migrate", "--noinput"], env=env, timeout=60)
    # Debug off, pages link the hashed copies that only collectstatic makes (as `make serve` does).
    run_quietly([sys.executable, "manage.py", "collectstatic", "--noinput"], env=env, timeout=60)
    run_quietly([sys.executable, "manage.py", "shell", "-c", CREATE_STAFF_USER], env=env, timeout=60)
    return env


@pytest.fixture
def gunicorn_url(server_env, tmp_path):
    """The dashboard under gunicorn; stopped, with its workers, whatever the test does."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "dashboard.wsgi",
        f"--bind=127.0.0.1:{port}",
        f"--workers={WORKERS}",
        f"--threads={THREADS_PER_WORKER}",
        "--worker-class=gthread",
        "--graceful-timeout=5",
        # Parallel runs must not fight over the default control socket in the home directory.
        "--no-control-socket",
    ]
    with log_path.open("w") as log:
        # Its own process group, so a last-resort kill reaches the workers too.
        server = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            command,
            cwd=PROJECT_DIR,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_ready(server, url, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_WITHIN_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=STOP_WITHIN_SECONDS)


def wait_until_ready(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log_tail(log_path)}")
        try:
            if requests.get(f"{url}/accounts/login/", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer within {READY_WITHIN_SECONDS} s:\n{log_tail(log_path)}")


def logged_in_session(url: str) -> requests.Session:
    session = requests.Session()
    login_url = f"{url}/accounts/login/"
    form = session.get(login_url, timeout=HTTP_TIMEOUT_SECONDS)
    token = CSRF_FIELD.search(form.text)
    assert form.status_code == 200
    assert token, "no CSRF token on the login page"
    answer = session.post(
        login_url,
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": login_url},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
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
    others = [body["email"] for demo_id, body in DEMO_CUSTOMERS.items() if demo_id != lookup.demo_id]
    if mixed_in := [email for email in others if escape(email) in lookup.body]:
        return f"another customer's e-mail is in it: {mixed_in}"
    if ("<html" in lookup.body) == lookup.fragment:
        return "a full page where a fragment was asked for, or the other way round"
    return None


def percentile_ms(seconds: list[float], percent: int) -> float:
    return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1] * 1000


@pytest.mark.load
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
