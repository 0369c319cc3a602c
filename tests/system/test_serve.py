"""`make serve`, the production start, run for real: two instances side by side on one host.

Each instance is `make serve` with the production settings (debug off) in its own process group,
on a free loopback port, over one SQLite file and one STATIC_ROOT, against the stand-in in this
process. They start one after the other (docs/operations.md, "Deploying": migrate and collectstatic of two
instances must not run at the same moment) and then run side by side. HOME and XDG_RUNTIME_DIR
point into a throwaway folder, where gunicorn would put a pid file or control socket of its own.

There is no Redis here, as with nothing but the required variables set: each instance runs a
worker per core, and what every worker must see (a bulk lookup's rows, the webhook rate limit) is
in the database they share. A batch started on one instance and read on the other proves it across
processes; workers of one instance are processes just the same.
"""

import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from customers.align.standin.demo import DemoId
from customers.align.standin.server import serving
from tests.support.servers import (
    MAKE_PREFIXES,
    PROJECT_DIR,
    SERVE_NAMES,
    deployment_variables,
    free_loopback_port,
    inherited_env,
    login_page_answers,
    post_login,
    run_captured,
    run_quietly,
    staff_user_script,
    wait_until_answers,
)

STAND_IN_KEY = "serve-test-stand-in-key"
USERNAME = "serve-tester"
PASSWORD = "serve test password, not used anywhere else"
HTTP_TIMEOUT_SECONDS = 10
# Deliveries a minute from one address; few, so that the test reaches the limit at once.
WEBHOOK_LIMIT = 3
BATCH = (DemoId.INDIVIDUAL_APPROVED, DemoId.CORPORATE_APPROVED)
BATCH_WITHIN_SECONDS = 30
CHECKED_FIELD = re.compile(r'name="checked" value="([^"]+)"')
# migrate, collectstatic and gunicorn's start, on a 2-core machine other tests share.
READY_WITHIN_SECONDS = 30
STOP_WITHIN_SECONDS = 15
STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"]+)"')
HASHED_STYLESHEET = re.compile(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"')


def live_processes_in_group(group: int) -> list[int]:
    """Processes of this process group that still run (zombies waiting to be reaped do not)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Instance:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stop(instance: Instance) -> None:
    """SIGTERM to the instance's whole process group (make, gunicorn, its workers), as Ctrl-C or a
    service manager would; SIGKILL for whatever still runs STOP_WITHIN_SECONDS later."""
    group = instance.process.pid
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, stop_signal)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_WITHIN_SECONDS
        while live_processes_in_group(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not live_processes_in_group(group):
            break
    instance.process.wait(timeout=STOP_WITHIN_SECONDS)


@contextmanager
def make_serve(env: dict[str, str], port: int, log_path: Path) -> Iterator[Instance]:
    """`make serve PORT=port` in its own process group, stopped with everything it started."""
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603  (our own Makefile)
            ["make", "--no-print-directory", "serve", f"PORT={port}"],  # noqa: S607  (make from PATH)
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    instance = Instance(process=process, port=port, log_path=log_path)
    try:
        yield instance
    finally:
        stop(instance)


def wait_until_ready(instance: Instance) -> None:
    wait_until_answers(
        instance.process,
        login_page_answers(instance.url),
        instance.log_path,
        within=READY_WITHIN_SECONDS,
        name="make serve",
    )


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def stand_in():
    with serving(api_key=STAND_IN_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def serve_env(stand_in, work_dir) -> dict[str, str]:
    """The production variables of docs/operations.md, "Deploying", on plain HTTP over loopback.

    Nothing inherited from this run's own settings, make or a BIND of the machine: what `make
    serve` does without them is what is tested.
    """
    home, runtime = work_dir / "home", work_dir / "runtime"
    home.mkdir()
    runtime.mkdir()
    return (
        inherited_env(drop_prefixes=MAKE_PREFIXES, drop_names=SERVE_NAMES)
        | deployment_variables(work_dir, align_url=stand_in.base_url, align_key=STAND_IN_KEY)
        | {
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "ALIGN_WEBHOOKS_ENABLED": "1",
            "ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE": str(WEBHOOK_LIMIT),
        }
    )


@pytest.fixture(scope="module")
def instances(serve_env, work_dir) -> Iterator[tuple[Instance, Instance]]:
    with make_serve(serve_env, free_loopback_port(), work_dir / "first.log") as first:
        wait_until_ready(first)
        # The database is migrated by now; a user to sign in with, for both.
        run_quietly(
            [sys.executable, "manage.py", "shell", "-c", staff_user_script(USERNAME, PASSWORD)], env=serve_env
        )
        with make_serve(serve_env, free_loopback_port(), work_dir / "second.log") as second:
            wait_until_ready(second)
            yield first, second


def test_two_instances_answer_side_by_side(instances):
    answers = [requests.get(f"{instance.url}/accounts/login/", timeout=5) for instance in instances]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert instances[0].process.poll() is None


def test_pages_link_every_static_file_by_its_hashed_name(instances):
    page = requests.get(f"{instances[0].url}/accounts/login/", timeout=5).text
    urls = STATIC_URL.findall(page)

    assert len(urls) >= 4  # the icon, the stylesheet, htmx and app.js
    assert all(re.search(r"\.[0-9a-f]{12}\.\w+$", url) for url in urls), urls
    assert all(requests.get(f"{instances[0].url}{url}", timeout=5).status_code == 200 for url in urls)


def test_hashed_stylesheet_is_served_gzipped_and_cached_for_good(instances):
    page = requests.get(f"{instances[1].url}/accounts/login/", timeout=5).text
    stylesheet = HASHED_STYLESHEET.search(page)
    assert stylesheet, "the page links no hashed app.css"

    answer = requests.get(
        f"{instances[1].url}{stylesheet[1]}", headers={"Accept-Encoding": "gzip"}, timeout=5
    )

    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "gzip"
    assert "immutable" in answer.headers["Cache-Control"]


def test_answers_name_no_server(instances):
    answer = requests.get(f"{instances[0].url}/accounts/login/", timeout=5)

    assert "Server" not in answer.headers


def test_binds_loopback_only_by_default(instances):
    """127.0.0.2 is this machine too: a server bound to every address would answer there."""
    for instance in instances:
        assert accepts_connections("127.0.0.1", instance.port)
        assert not accepts_connections("127.0.0.2", instance.port)


def test_writes_no_pid_file_or_control_socket_at_a_fixed_path(instances, serve_env):
    left = [
        path
        for folder in (serve_env["HOME"], serve_env["XDG_RUNTIME_DIR"])
        for path in Path(folder).rglob("*")
        if path.is_socket() or path.suffix in {".ctl", ".pid"}
    ]

    assert left == []
    assert not list(PROJECT_DIR.glob("*.pid"))


def test_stopping_the_process_group_leaves_nothing_running(serve_env, work_dir):
    port = free_loopback_port()
    with make_serve(serve_env, port, work_dir / "stopped.log") as instance:
        wait_until_ready(instance)
        group = instance.process.pid
        assert len(live_processes_in_group(group)) >= 2  # make's gunicorn master and its worker

    assert live_processes_in_group(group) == []
    assert not accepts_connections("127.0.0.1", port)


def gunicorn_processes(group: int) -> tuple[int, list[int]]:
    """The gunicorn master of an instance's process group, and its workers."""
    gunicorns = {}
    for pid in live_processes_in_group(group):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone while we looked
        if b"gunicorn" in command:
            gunicorns[pid] = parent
    (master,) = [pid for pid, parent in gunicorns.items() if parent not in gunicorns]
    return master, [pid for pid, parent in gunicorns.items() if parent == master]


def test_without_redis_each_instance_runs_a_worker_per_core_it_may_use(instances):
    for instance in instances:
        _, workers = gunicorn_processes(instance.process.pid)

        assert len(workers) == len(os.sched_getaffinity(0))


def signed_in(instance: Instance) -> requests.Session:
    session = requests.Session()
    answer = post_login(session, instance.url, USERNAME, PASSWORD, timeout=HTTP_TIMEOUT_SECONDS)
    assert answer.url == f"{instance.url}/customers/", "the login did not lead to the search page"
    return session


def start_batch(session: requests.Session, instance: Instance, customer_ids: tuple[str, ...]) -> str:
    """Check the list, then start it, as the bulk page's two buttons do; the batch page's path."""
    pasted = "\n".join(str(customer_id) for customer_id in customer_ids)
    checked = session.post(
        f"{instance.url}/customers/bulk/",
        data={"customer_ids": pasted} | csrf(session),
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    digest = CHECKED_FIELD.search(checked.text)
    assert checked.status_code == 200, f"the check answered {checked.status_code}"
    assert digest, "the check did not offer the start"
    started = session.post(
        f"{instance.url}/customers/bulk/start/",
        data={"customer_ids": pasted, "checked": digest[1]} | csrf(session),
        timeout=HTTP_TIMEOUT_SECONDS,
        allow_redirects=False,
    )
    assert started.status_code == 303, f"the start answered {started.status_code}"
    return started.headers["Location"]


def csrf(session: requests.Session) -> dict[str, str]:
    """The form field Django checks against the CSRF cookie (its value, unmasked, is accepted)."""
    return {"csrfmiddlewaretoken": session.cookies["csrftoken"]}


def test_a_bulk_lookup_started_on_one_instance_is_shown_whole_by_the_other(instances):
    first, second = instances
    session = signed_in(first)
    batch_path = start_batch(session, first, BATCH)

    deadline = time.monotonic() + BATCH_WITHIN_SECONDS
    while True:
        page = session.get(f"{second.url}{batch_path}", timeout=HTTP_TIMEOUT_SECONDS)
        assert page.status_code == 200, f"the other instance answered {page.status_code}"
        if "data-finished" in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert f'Done: <strong class="bulk-count">{len(BATCH)} of {len(BATCH)}</strong>' in page.text
    assert all(str(customer_id) in page.text for customer_id in BATCH)


def test_webhook_deliveries_are_counted_across_instances(instances):
    """Unsigned, so each is refused for its signature once the rate limit has counted it."""
    if time.time() % 60 > 55:
        time.sleep(6)  # all of them within one minute's window of the limit
    answers = [
        requests.post(
            f"{instances[number % 2].url}/webhooks/align/", data=b"{}", timeout=HTTP_TIMEOUT_SECONDS
        )
        for number in range(WEBHOOK_LIMIT + 1)
    ]

    assert [answer.status_code for answer in answers] == [401] * WEBHOOK_LIMIT + [429]


def test_without_a_secret_key_it_fails_naming_the_variable(serve_env):
    env = {name: value for name, value in serve_env.items() if name != "DJANGO_SECRET_KEY"}

    result = run_captured(
        ["make", "--no-print-directory", "serve", f"PORT={free_loopback_port()}"],
        env=env,
        timeout=READY_WITHIN_SECONDS,
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


# --- What `make serve` is made of, without starting it ----------------------------------------


def load_settings(monkeypatch, **environment: str) -> dict:
    """Evaluate dashboard/settings.py afresh, debug or not, with no DASHBOARD_STATIC_ROOT unless given."""
    monkeypatch.delenv("DASHBOARD_STATIC_ROOT", raising=False)
    environment = {"DJANGO_SECRET_KEY": "x" * 50, "DASHBOARD_AUDIT_HASH_KEY": "y" * 50} | environment
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(PROJECT_DIR / "dashboard" / "settings.py"))


def gunicorn_settings(**environment: str) -> dict[str, str]:
    """The settings gunicorn.conf.py gives gunicorn under this environment, as gunicorn prints them."""
    env = {name: value for name, value in os.environ.items() if name not in {"BIND", "PORT"}} | environment
    printed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--print-config"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (line.partition("=") for line in printed.splitlines())
    )


def test_debug_off_stores_static_files_under_hashed_names_with_gzip_copies(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="0")

    assert (
        loaded["STORAGES"]["staticfiles"]["BACKEND"]
        == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )


def test_debug_on_serves_static_files_as_they_are(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="1")

    assert (
        loaded["STORAGES"]["staticfiles"]["BACKEND"]
        == "django.contrib.staticfiles.storage.StaticFilesStorage"
    )


def test_static_root_is_staticfiles_in_the_project_unless_moved(monkeypatch, tmp_path):
    assert load_settings(monkeypatch)["STATIC_ROOT"] == PROJECT_DIR / "staticfiles"
    assert load_settings(monkeypatch, DASHBOARD_STATIC_ROOT=str(tmp_path))["STATIC_ROOT"] == tmp_path


def test_gunicorn_binds_loopback_port_8000_by_default():
    assert gunicorn_settings()["bind"] == "['127.0.0.1:8000']"


def test_gunicorn_binds_the_address_and_port_of_bind_and_port():
    assert gunicorn_settings(BIND="10.1.2.3", PORT="9123")["bind"] == "['10.1.2.3:9123']"


def gunicorn_config(monkeypatch, *, cores: int, **environment: str) -> dict:
    """gunicorn.conf.py evaluated in this process, as if this process might run on `cores` cores."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))


@pytest.mark.parametrize("cores", [1, 2, 6])
def test_without_redis_gunicorn_runs_a_worker_per_usable_core_of_eight_threads(monkeypatch, cores):
    config = gunicorn_config(monkeypatch, cores=cores)

    assert (config["workers"], config["threads"]) == (cores, 8)


def test_with_redis_the_shape_is_the_same(monkeypatch):
    config = gunicorn_config(monkeypatch, cores=6, REDIS_URL="redis://127.0.0.1:6379/0")

    assert (config["workers"], config["threads"]) == (6, 8)


def test_web_concurrency_and_gunicorn_threads_change_the_shape(monkeypatch):
    config = gunicorn_config(monkeypatch, cores=6, WEB_CONCURRENCY="3", GUNICORN_THREADS="16")

    assert (config["workers"], config["threads"]) == (3, 16)


@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "GUNICORN_THREADS"])
@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_count_stops_gunicorn_naming_the_variable(monkeypatch, name, value):
    with pytest.raises(SystemExit, match=f"{name} must be a whole number"):
        gunicorn_config(monkeypatch, cores=2, **{name: value})


def test_gunicorn_reads_the_shape_from_the_environment_and_its_command_line_args_win():
    assert gunicorn_settings(WEB_CONCURRENCY="3", GUNICORN_THREADS="5")["workers"] == "3"
    assert gunicorn_settings(WEB_CONCURRENCY="3", GUNICORN_THREADS="5")["threads"] == "5"
    assert gunicorn_settings(WEB_CONCURRENCY="3", GUNICORN_CMD_ARGS="--workers 4")["workers"] == "4"
