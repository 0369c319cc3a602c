"""The dashboard over a database it can't write (issue #10, finding 6).

A staff member signs in while the database's directory is writable; then the directory and
the file are made read-only, and gunicorn serves the dashboard again as a process that file
permissions apply to. Pages that need no write must still load, for the signed-in user too;
a lookup must be paused (503) without asking Align; signing in must say why it can't be done.

Root ignores chmod, so under root (as CI runs) the server runs with none of root's
capabilities (`setpriv`), the privileges that let it; under any other user, as that user. Not
as `nobody`: this interpreter may live where only root can reach it (pyenv under /root).

Two states of the files beside the database, which WAL mode needs: none (the last writer
closed cleanly, and SQLite then refuses even a read in a read-only directory), and a -wal still
holding the sign-in with its -shm (a writer still had the database open, or crashed). A third,
a -wal without its -shm, has a test of its own: it must not be read at all.

None of these has a `django_db` mark: the server and the commands use their own database
file. The two tests at the end run in this process and check that only "can't be written"
errors are treated so.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import IntegrityError
from django.test import Client
from django_otp.oath import totp

from customers.align.standin.demo import DemoId
from customers.align.standin.server import serving
from dashboard.accounts.sessions import SESSION_REFRESHED_KEY, SESSION_STARTED_KEY
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME
from tests.support.servers import (
    CSRF_FIELD,
    free_loopback_port,
    gunicorn_command,
    login_page_answers,
    post_login,
    prepare,
    production_env,
    run_captured,
    run_quietly,
    staff_user_script,
    start_in_own_group,
    stop_process_group,
    wait_until_answers,
)

STAND_IN_KEY = "read-only-test-stand-in-key"
USERNAME = "read-only-tester"
PASSWORD = "read-only test password, not used anywhere else"
# Signed in before the database turns read-only, each for the tests of one page.
LEAVING_USERNAME = "read-only-leaving"
EXPIRING_USERNAME = "read-only-expiring"
ADMIN_USERNAME = "read-only-admin"
VERIFYING_USERNAME = "read-only-verifying"
TOTP_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test key, as django-otp keeps it
HTTP_TIMEOUT_SECONDS = 10
COMMAND_TIMEOUT_SECONDS = 60
READY_WITHIN_SECONDS = 15
STOP_WITHIN_SECONDS = 10
# Holds the database open until killed, so its -wal and -shm files stay behind with their rows.
HOLD_OPEN = """
import sqlite3, sys
database = sqlite3.connect(sys.argv[1])
database.execute("SELECT COUNT(*) FROM django_session").fetchall()
print("open", flush=True)
sys.stdin.read()
"""
COUNT_EVENTS = """
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM event")
    print(cursor.fetchone()[0])
"""
# Ages the idle clock of every session, so that each request made later tries to save its session.
OTHER_USERS = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django_otp.plugins.otp_totp.models import TOTPDevice
users = get_user_model().objects
lookup = Permission.objects.get(codename="lookup_customer")
for name in ({LEAVING_USERNAME!r}, {EXPIRING_USERNAME!r}, {VERIFYING_USERNAME!r}):
    users.create_user(name, password={PASSWORD!r}).user_permissions.add(lookup)
users.create_superuser({ADMIN_USERNAME!r}, password={PASSWORD!r})
verifying = users.get(username={VERIFYING_USERNAME!r})
TOTPDevice.objects.create(user=verifying, name="Authenticator app", key={TOTP_KEY!r}, confirmed=True)
"""
# Moves the start of the expiring user's session back past DASHBOARD_SESSION_MAX_HOURS.
SESSION_LIMIT_PASSED = f"""
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
user_id = str(get_user_model().objects.get(username={EXPIRING_USERNAME!r}).pk)
for key in Session.objects.values_list("session_key", flat=True):
    session = SessionStore(session_key=key)
    if session.get("_auth_user_id") == user_id:
        session[{SESSION_STARTED_KEY!r}] = 0
        session.save()
"""
IDLE_CLOCK_DUE = f"""
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
for key in Session.objects.values_list("session_key", flat=True):
    session = SessionStore(session_key=key)
    session[{SESSION_REFRESHED_KEY!r}] = 0
    session.save()
"""
SIGN_IN_UNAVAILABLE = "Signing in is unavailable right now"
CANNOT_BE_WRITTEN = "The dashboard's database can't be written."
LOOKUPS_PAUSED = "Lookups are paused"


def dashboard_env(database: Path, *, align_url: str) -> dict[str, str]:
    """The production settings module, fed a test environment, over this database file."""
    return production_env(
        database.parent.parent,
        align_url=align_url,
        align_key=STAND_IN_KEY,
        DASHBOARD_DB_PATH=str(database),
        DASHBOARD_LOG_FORMAT="text",
    )


def unprivileged() -> list[str]:
    """The prefix that runs a command as a process file permissions apply to."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]


def assert_cannot_write_in(directory: Path) -> None:
    """Make sure the server will really be refused, or every test here would prove nothing."""
    command = [*unprivileged(), sys.executable, "-c", "import sys; open(sys.argv[1], 'x')"]
    try:
        probe = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
            [*command, str(directory / "probe")],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("running as root without setpriv (util-linux): root would ignore the permissions")
    if probe.returncode == 0:
        pytest.fail(f"{command} could create a file in the read-only {directory}")
    if "PermissionError" not in probe.stderr:
        pytest.skip(f"cannot run a process without root's capabilities here: {probe.stderr.strip()}")


def make_read_only(directory: Path) -> None:
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)


def make_writable(directory: Path) -> None:
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def start_gunicorn(env: dict[str, str], log_path: Path, *, prefix: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_loopback_port()
    command = [*prefix, *gunicorn_command(port, "--workers=1", "--threads=2", "--graceful-timeout=2")]
    server = start_in_own_group(command, log_path=log_path, env=env, append=True)
    url = f"http://127.0.0.1:{port}"
    try:
        answers = login_page_answers(url, status=None)
        wait_until_answers(server, answers, log_path, within=READY_WITHIN_SECONDS, name="gunicorn")
    except BaseException:
        stop(server)
        raise
    return server, url


def stop(process: subprocess.Popen) -> None:
    stop_process_group(process, within=STOP_WITHIN_SECONDS)


def sign_in(
    session: requests.Session, url: str, password: str, *, username: str = USERNAME
) -> requests.Response:
    return post_login(session, url, username, password, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)


def signed_in_as(url: str, username: str) -> requests.Session:
    session = requests.Session()
    assert sign_in(session, url, PASSWORD, username=username).status_code == 302
    return session


@dataclass(frozen=True)
class ReadOnly:
    """The dashboard's address over the read-only database, sessions signed in before, its folder."""

    url: str
    signed_in: requests.Session
    directory: Path
    # Each signed in before, for the page of one test: signing out, a session past its limit, the
    # admin, and a password-only session held at the two-factor page.
    leaving: requests.Session
    expiring: requests.Session
    admin: requests.Session
    verifying: requests.Session


def hold_open(database: Path) -> subprocess.Popen:
    holder = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
        [sys.executable, "-c", HOLD_OPEN, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # readline() returns at once if it fails: its stdout closes as it exits.
    assert holder.stdout.readline().strip() == "open"
    return holder


def kill(holder: subprocess.Popen) -> None:
    """Killed, it can't checkpoint its -wal into the database and delete it."""
    holder.kill()
    holder.wait(timeout=STOP_WITHIN_SECONDS)
    holder.stdin.close()
    holder.stdout.close()


@pytest.fixture(scope="module")
def stand_in():
    with serving(api_key=STAND_IN_KEY) as server:
        yield server


@pytest.fixture(scope="module", params=["closed-cleanly", "wal-left-behind"])
def read_only(request, stand_in, tmp_path_factory):
    """The dashboard over a read-only database, and a session signed in before it became so."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("a read-only SQLite directory: make test's first pass, without DATABASE_URL")
    workspace = tmp_path_factory.mktemp("read-only")
    directory = workspace / "database"
    directory.mkdir()
    database = directory / "dashboard.sqlite3"
    env = dashboard_env(database, align_url=stand_in.base_url)
    prepare(env, staff_user_script(USERNAME, PASSWORD) + OTHER_USERS, timeout=COMMAND_TIMEOUT_SECONDS)

    holder = hold_open(database) if request.param == "wal-left-behind" else None
    server = None
    try:
        server, url = start_gunicorn(env, workspace / "writable.log", prefix=[])
        signed_in = signed_in_as(url, USERNAME)
        others = {
            name: signed_in_as(url, username)
            for name, username in (
                ("leaving", LEAVING_USERNAME),
                ("expiring", EXPIRING_USERNAME),
                ("admin", ADMIN_USERNAME),
                ("verifying", VERIFYING_USERNAME),
            )
        }
        stop(server)
        for script in (IDLE_CLOCK_DUE, SESSION_LIMIT_PASSED):
            run_quietly([sys.executable, "manage.py", "shell", "-c", script], env=env)
        if holder is not None:
            kill(holder)
            assert (directory / "dashboard.sqlite3-wal").stat().st_size > 0
        make_read_only(directory)
        assert_cannot_write_in(directory)
        server, url = start_gunicorn(env, workspace / "read-only.log", prefix=unprivileged())
        yield ReadOnly(url, signed_in, directory, **others)
    finally:
        if server is not None and server.poll() is None:
            stop(server)
        if holder is not None and holder.poll() is None:
            kill(holder)
        make_writable(directory)


def test_login_page_loads(read_only):
    url = read_only.url

    page = requests.get(f"{url}/accounts/login/", timeout=HTTP_TIMEOUT_SECONDS)

    assert page.status_code == 200
    assert "<h1>Log in</h1>" in page.text


def test_signed_in_search_page_loads(read_only):
    url, signed_in = read_only.url, read_only.signed_in

    page = signed_in.get(f"{url}/customers/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)

    assert page.status_code == 200
    assert USERNAME in page.text


def test_session_that_cannot_be_saved_stays_signed_in(read_only):
    url, signed_in = read_only.url, read_only.signed_in

    first = signed_in.get(f"{url}/customers/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
    second = signed_in.get(f"{url}/customers/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)

    assert "sessionid" not in first.headers.get("Set-Cookie", "")
    assert second.status_code == 200


def test_lookup_is_paused_without_asking_align(read_only, stand_in):
    url, signed_in = read_only.url, read_only.signed_in
    calls_before = stand_in.calls

    page = signed_in.get(f"{url}/customers/{DemoId.INDIVIDUAL_APPROVED}/", timeout=HTTP_TIMEOUT_SECONDS)

    assert page.status_code == 503
    assert LOOKUPS_PAUSED in page.text
    assert stand_in.calls == calls_before


def test_signing_in_says_the_database_cannot_be_written(read_only):
    url = read_only.url
    session = requests.Session()

    answer = sign_in(session, url, PASSWORD)

    assert answer.status_code == 503
    assert SIGN_IN_UNAVAILABLE in answer.text
    assert CANNOT_BE_WRITTEN in answer.text
    assert "sessionid" not in session.cookies


def test_wrong_password_is_refused_as_unavailable_when_the_throttle_cannot_count_it(read_only):
    url = read_only.url

    answer = sign_in(requests.Session(), url, "not the password")

    assert answer.status_code == 503
    assert SIGN_IN_UNAVAILABLE in answer.text


def csrf_token(session: requests.Session, page_url: str) -> str:
    page = session.get(page_url, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)
    token = CSRF_FIELD.search(page.text)
    assert token, f"no CSRF token on {page_url} (it answered {page.status_code})"
    return token[1]


def post_form(session: requests.Session, page_url: str, fields: dict[str, str]) -> requests.Response:
    """The form of a page, as a browser posts it: its CSRF token from the page, then the POST."""
    return session.post(
        page_url,
        data=fields | {"csrfmiddlewaretoken": csrf_token(session, page_url)},
        headers={"Referer": page_url},
        timeout=HTTP_TIMEOUT_SECONDS,
        allow_redirects=False,
    )


def test_an_htmx_lookup_is_paused_without_asking_align(read_only, stand_in):
    calls_before = stand_in.calls

    answer = read_only.signed_in.get(
        f"{read_only.url}/customers/{DemoId.INDIVIDUAL_APPROVED}/",
        headers={"HX-Request": "true"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )

    assert answer.status_code == 503
    assert LOOKUPS_PAUSED in answer.text
    assert stand_in.calls == calls_before


def test_signing_out_says_the_database_cannot_be_written(read_only):
    leaving = read_only.leaving
    token = csrf_token(leaving, f"{read_only.url}/customers/")

    answer = leaving.post(
        f"{read_only.url}/accounts/logout/",
        data={"csrfmiddlewaretoken": token},
        timeout=HTTP_TIMEOUT_SECONDS,
        allow_redirects=False,
    )

    assert answer.status_code == 503
    assert CANNOT_BE_WRITTEN in answer.text


def test_a_session_past_its_limit_is_refused_saying_the_database_cannot_be_written(read_only):
    """It can't be ended (its row deleted) now, so it is not served either: never a 500."""
    answer = read_only.expiring.get(
        f"{read_only.url}/customers/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False
    )

    assert answer.status_code == 503
    assert CANNOT_BE_WRITTEN in answer.text
    assert EXPIRING_USERNAME not in answer.text


def test_the_admin_loads_and_a_change_says_the_database_cannot_be_written(read_only):
    admin = read_only.admin
    index = admin.get(f"{read_only.url}/admin/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False)

    answer = post_form(admin, f"{read_only.url}/admin/auth/group/add/", {"name": "Read-only test"})

    assert index.status_code == 200
    assert answer.status_code == 503
    assert CANNOT_BE_WRITTEN in answer.text


def test_a_two_factor_code_says_signing_in_is_unavailable(read_only):
    code = f"{totp(bytes.fromhex(TOTP_KEY)):06d}"

    answer = post_form(read_only.verifying, f"{read_only.url}/accounts/two-factor/verify/", {"token": code})

    assert answer.status_code == 503
    assert SIGN_IN_UNAVAILABLE in answer.text


def test_lookups_work_again_once_the_database_can_be_written(read_only, stand_in):
    """Without a restart: the read-only connection each thread opened is not kept past its request.

    Last of the tests on `read_only`: the database is writable from here on.
    """
    url, signed_in, directory = read_only.url, read_only.signed_in, read_only.directory
    for _ in range(4):  # more requests than the server has threads, so each thread opens one
        paused = signed_in.get(f"{url}/customers/{DemoId.INDIVIDUAL_APPROVED}/", timeout=HTTP_TIMEOUT_SECONDS)
        assert paused.status_code == 503
    calls_before = stand_in.calls

    make_writable(directory)
    pages = [
        signed_in.get(f"{url}/customers/{DemoId.INDIVIDUAL_APPROVED}/", timeout=HTTP_TIMEOUT_SECONDS)
        for _ in range(4)
    ]

    assert [page.status_code for page in pages] == [200] * 4
    assert stand_in.calls == calls_before + 4


def test_rows_left_in_a_wal_without_its_shm_are_never_skipped(tmp_path):
    """Such a -wal can't be read in a read-only directory; reading the file alone would miss its rows."""
    writable, read_only = tmp_path / "writable", tmp_path / "read-only"
    writable.mkdir()
    read_only.mkdir()
    with closing(sqlite3.connect(writable / "dashboard.sqlite3", isolation_level=None)) as database:
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("CREATE TABLE event (id INTEGER PRIMARY KEY)")
        database.execute("INSERT INTO event DEFAULT VALUES")
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute("INSERT INTO event DEFAULT VALUES")
        # While it is open, the second row is only in the -wal: copy the two files, not the -shm.
        for name in ("dashboard.sqlite3", "dashboard.sqlite3-wal"):
            shutil.copyfile(writable / name, read_only / name)
    make_read_only(read_only)
    try:
        assert_cannot_write_in(read_only)
        env = dashboard_env(read_only / "dashboard.sqlite3", align_url="http://127.0.0.1:9")
        count = run_captured(
            [*unprivileged(), sys.executable, "manage.py", "shell", "-c", COUNT_EVENTS],
            env=env,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
    finally:
        make_writable(read_only)

    assert count.returncode != 0, f"read {count.stdout.strip()} of 2 rows"


# --- In this process: only "can't be written" errors get the 503 -----------------------------


@pytest.mark.django_db
def test_a_database_bug_at_sign_in_stays_a_server_error(staff_user, monkeypatch):
    def fail_like_a_bug(request, user, backend=None):
        raise IntegrityError("NOT NULL constraint failed: django_session.session_data")

    monkeypatch.setattr("django.contrib.auth.views.auth_login", fail_like_a_bug)
    client = Client(raise_request_exception=False)

    answer = client.post("/accounts/login/", {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})

    assert answer.status_code == 500
    assert SIGN_IN_UNAVAILABLE not in answer.content.decode()


@pytest.mark.skipif(
    settings.SESSION_ENGINE != "django.contrib.sessions.backends.db", reason="sessions are in the cache"
)
@pytest.mark.django_db
def test_a_session_deleted_meanwhile_still_interrupts_the_request(staff_client, monkeypatch):
    session = staff_client.session
    session[SESSION_REFRESHED_KEY] = 0  # long ago: this request saves the session
    session.save()
    save = SessionStore.save

    def save_after_a_logout_elsewhere(self, must_create=False):
        Session.objects.filter(session_key=self.session_key).delete()
        save(self, must_create=must_create)

    monkeypatch.setattr(SessionStore, "save", save_after_a_logout_elsewhere)

    answer = staff_client.get("/customers/")

    assert answer.status_code == 400
