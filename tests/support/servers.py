"""What the tests that start the dashboard as a real server share (and bench/serve_bench.py).

Each of them runs manage.py, gunicorn or `make serve` as separate processes with the production
settings, on free loopback ports, against a stand-in of Align. The environment, the setup
commands, waiting for a server to answer and stopping it with its workers, and signing in, are
the same everywhere; what differs stays at each call site, as keyword arguments.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

PROJECT_DIR = Path(__file__).resolve().parents[2]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# This run's own settings must never reach a server under test: it gets only what a test names.
OWN_PREFIXES = ("DJANGO_", "ALIGN_", "DASHBOARD_")
# What make and gunicorn.conf.py would also pick up from the shell running the tests.
MAKE_PREFIXES = ("MAKE", "MFLAGS")
SERVE_NAMES = ("BIND", "PORT", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def inherited_env(*, drop_prefixes: tuple[str, ...] = (), drop_names: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment (PATH, locale, ...) without the dashboard's own variables."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(OWN_PREFIXES + drop_prefixes) and name not in drop_names
    }


def deployment_variables(work_dir: Path, *, align_url: str, align_key: str) -> dict[str, str]:
    """What docs/operations.md, "Deploying", has an operator set, on loopback: plain HTTP, password sign-in,
    a SQLite file and STATIC_ROOT in work_dir. One random secret key per environment: every
    process started with it (instances side by side, a restart) accepts the others' sessions."""
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DASHBOARD_AUDIT_HASH_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_HTTPS_ONLY": "0",
        "DASHBOARD_REQUIRE_2FA": "0",
        "DASHBOARD_DB_PATH": str(work_dir / "dashboard.sqlite3"),
        "DASHBOARD_STATIC_ROOT": str(work_dir / "staticfiles"),
        "ALIGN_API_BASE_URL": align_url,
        "ALIGN_API_KEY": align_key,
    }


def production_env(
    work_dir: Path,
    *,
    align_url: str,
    align_key: str,
    inherited: dict[str, str] | None = None,
    **variables: str,
) -> dict[str, str]:
    """The production settings module (debug off) with deployment_variables, for running
    manage.py or gunicorn directly (`make serve` gets neither from outside); `variables` add to
    or replace these."""
    return (
        (inherited if inherited is not None else inherited_env())
        | {"DJANGO_SETTINGS_MODULE": "dashboard.settings", "DJANGO_DEBUG": "0"}
        | deployment_variables(work_dir, align_url=align_url, align_key=align_key)
        | variables
    )


def gunicorn_command(port: int, *options: str) -> list[str]:
    """gunicorn serving dashboard.wsgi with threaded workers on a loopback port; `options` size it.

    No control socket: parallel runs must not fight over the default one in the home directory.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "dashboard.wsgi",
        f"--bind=127.0.0.1:{port}",
        "--worker-class=gthread",
        "--no-control-socket",
        *options,
    ]


def run_captured(
    command: list[str], *, env: dict[str, str] | None, timeout: float
) -> subprocess.CompletedProcess:
    """Run a command from the project directory, its output kept for the test to look at."""
    return subprocess.run(  # noqa: S603  (our own programs and arguments)
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_quietly(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 60) -> None:
    """Run a command from the project directory; fail with its output if it fails."""
    result = run_captured(command, env=env, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


def staff_user_script(username: str, password: str) -> str:
    """`manage.py shell -c` text that creates a user allowed to look customers up, and nothing more."""
    return f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
user = get_user_model().objects.create_user({username!r}, password={password!r})
user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
"""


def prepare(env: dict[str, str], users_script: str, *, timeout: float = 60) -> None:
    """What `make serve` does before gunicorn starts, then the users: migrate, createcachetable (the
    shared cache's table without REDIS_URL), collectstatic (debug off, pages link the hashed copies
    only it makes), each in its own manage.py process with this environment."""
    for command in (
        ["migrate", "--noinput"],
        ["createcachetable"],
        ["collectstatic", "--noinput"],
        ["shell", "-c", users_script],
    ):
        run_quietly([sys.executable, "manage.py", *command], env=env, timeout=timeout)


def login_page_answers(url: str, *, status: int | None = 200) -> Callable[[], bool]:
    """A readiness probe: the login page answers (with this status, unless None)."""

    def answers() -> bool:
        answer = requests.get(f"{url}/accounts/login/", timeout=1)
        return status is None or answer.status_code == status

    return answers


def wait_until_answers(
    process: subprocess.Popen, answers: Callable[[], bool], log_path: Path, *, within: float, name: str
) -> None:
    """Poll until `answers()`; fail with the log's tail if the process exits or `within` runs out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            if answers():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{name} did not answer within {within} s:\n{log_tail(log_path)}")


def stop_process_group(process: subprocess.Popen, *, within: float) -> None:
    """SIGTERM to the process; SIGKILL to its whole group (its workers) if it has not exited
    `within` seconds later. Started with start_new_session, its pid is the group's id."""
    process.terminate()
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=within)


def start_in_own_group(
    command: list[str], *, log_path: Path, env: dict[str, str] | None = None, append: bool = False
) -> subprocess.Popen:
    """Start a server writing to log_path, in its own process group: stop_process_group's last
    resort then reaches its workers too."""
    with log_path.open("a" if append else "w") as log:
        return subprocess.Popen(  # noqa: S603  (our own programs and arguments)
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextmanager
def running(
    command: list[str], *, log_path: Path, stop_within: float, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A server process in its own process group, stopped with all its workers whatever happens."""
    process = start_in_own_group(command, log_path=log_path, env=env)
    try:
        yield process
    finally:
        stop_process_group(process, within=stop_within)


def post_login(
    session: requests.Session, base_url: str, username: str, password: str, *, timeout: float, **options
) -> requests.Response:
    """The login form as a browser sends it: its page first (cookie and CSRF field), then the POST."""
    login_url = f"{base_url}/accounts/login/"
    form = session.get(login_url, timeout=timeout)
    token = CSRF_FIELD.search(form.text)
    assert form.status_code == 200, f"the login page answered {form.status_code}"
    assert token, "no CSRF token on the login page"
    return session.post(
        login_url,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": login_url},
        timeout=timeout,
        **options,
    )
