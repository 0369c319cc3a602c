"""Two instances over one PostgreSQL and one Redis, as a deployment of several runs them.

A throwaway PostgreSQL and Redis (tests/support/services.py) on free loopback ports, migrated and given
two users once; then two gunicorn instances (gunicorn.conf.py, debug off, one secret key) on
free ports, against the stand-in in this process. What one instance records, the other must
see: a session (Redis), a lockout (PostgreSQL), the audit trail (PostgreSQL). Then PostgreSQL
is stopped under both: readiness and lookups must say so with a 503, never a 500, and both
must come back by themselves when it starts again.

The temporary directory is made with tempfile, not pytest's tmp_path: as root PostgreSQL runs
as `postgres`, which can't enter pytest's directories (root's, mode 0700).
"""

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from django.utils.html import escape

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.server import serving
from tests.support import servers, services
from tests.support.servers import (
    MAKE_PREFIXES,
    SERVE_NAMES,
    free_loopback_port,
    inherited_env,
    prepare,
    production_env,
    start_in_own_group,
)
from tests.system.test_serve import Instance, stop, wait_until_ready

STAND_IN_KEY = "multi-instance-stand-in-key"
USERNAME = "multi-instance-tester"
PASSWORD = "multi instance password, not used anywhere else"
# Locked out by its test; a user of its own, so the lookups of the other tests still sign in.
LOCKED_USERNAME = "multi-instance-locked"
WRONG_PASSWORD = "not the password"
FAILURE_LIMIT = 5  # AXES_FAILURE_LIMIT
LOCKED_OUT_TEXT = "Too many failed log-ins"
PAUSED_TEXT = "Lookups are paused"
AUDITED_LOOKUPS = 10
HTTP_TIMEOUT_SECONDS = 10
CREATE_USERS = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
users = get_user_model().objects
users.create_user({USERNAME!r}, password={PASSWORD!r}).user_permissions.add(
    Permission.objects.get(codename="lookup_customer")
)
users.create_user({LOCKED_USERNAME!r}, password={PASSWORD!r})
"""


@dataclass(frozen=True)
class Deployment:
    first: Instance
    second: Instance
    database_url: str
    services_dir: Path

    @property
    def instances(self) -> tuple[Instance, Instance]:
        return self.first, self.second


@contextlib.contextmanager
def temporary_directory() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-multi-instance-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[Instance]:
    """gunicorn.conf.py, as `make serve` runs it, in its own process group; stopped with its workers."""
    port = free_loopback_port()
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    process = start_in_own_group(
        command, log_path=log_path, env=env | {"BIND": "127.0.0.1", "PORT": str(port)}
    )
    instance = Instance(process=process, port=port, log_path=log_path)
    try:
        wait_until_ready(instance)
        yield instance
    finally:
        stop(instance)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """PostgreSQL, Redis, migrate, collectstatic and the users once; then instances A and B."""
    with (
        serving(api_key=STAND_IN_KEY) as stand_in,
        temporary_directory() as workdir,
        services.postgresql(workdir) as database_url,
        services.redis(workdir) as redis_url,
    ):
        home = workdir / "home"
        home.mkdir()
        env = production_env(
            workdir,
            align_url=stand_in.base_url,
            align_key=STAND_IN_KEY,
            inherited=inherited_env(drop_prefixes=MAKE_PREFIXES, drop_names=SERVE_NAMES),
            # One environment, so one secret key for both: a session signed in on A is valid on B.
            HOME=str(home),
            XDG_RUNTIME_DIR=str(home),
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            ALIGN_API_TIMEOUT="5",
        )
        prepare(env, CREATE_USERS)
        with gunicorn(env, workdir / "a.log") as first, gunicorn(env, workdir / "b.log") as second:
            yield Deployment(first, second, database_url, workdir)


def post_login(
    session: requests.Session, instance: Instance, username: str, password: str
) -> requests.Response:
    return servers.post_login(session, instance.url, username, password, timeout=HTTP_TIMEOUT_SECONDS)


def signed_in(instance: Instance) -> requests.Session:
    session = requests.Session()
    answer = post_login(session, instance, USERNAME, PASSWORD)
    assert answer.url == f"{instance.url}/customers/", "the login did not lead to the search page"
    # Keep the cookies, drop the connection, which gunicorn closes after 2 s idle (see test_load).
    session.close()
    return session


def look_up(session: requests.Session, instance: Instance, demo_id: DemoId) -> requests.Response:
    # Connection: close, so no request meets a keep-alive connection gunicorn has just dropped.
    return session.get(
        f"{instance.url}/customers/{demo_id}/", headers={"Connection": "close"}, timeout=HTTP_TIMEOUT_SECONDS
    )


def shows_customer(answer: requests.Response, demo_id: DemoId) -> bool:
    return answer.status_code == 200 and escape(DEMO_CUSTOMERS[demo_id]["email"]) in answer.text


def readiness(instance: Instance) -> requests.Response:
    return requests.get(f"{instance.url}/readyz", timeout=HTTP_TIMEOUT_SECONDS)


def lookups_since(database_url: str, last_id: int) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as database:
        rows = database.execute(
            "SELECT customer_id, outcome FROM customers_auditevent WHERE id > %s ORDER BY id", [last_id]
        ).fetchall()
    return [(str(customer_id), outcome) for customer_id, outcome in rows]


def last_audit_id(database_url: str) -> int:
    with psycopg.connect(database_url) as database:
        return database.execute("SELECT COALESCE(MAX(id), 0) FROM customers_auditevent").fetchone()[0]


@contextlib.contextmanager
def postgresql_stopped(deployment: Deployment) -> Iterator[None]:
    """PostgreSQL down under both instances, which keep running; started again on the way out."""
    services.stop_postgresql(deployment.services_dir)
    try:
        yield
    finally:
        services.start_postgresql(deployment.services_dir, deployment.database_url)


def test_a_session_signed_in_on_one_instance_works_on_the_other(deployment):
    session = signed_in(deployment.first)

    answer = look_up(session, deployment.second, DemoId.INDIVIDUAL_APPROVED)

    assert answer.url == f"{deployment.second.url}/customers/{DemoId.INDIVIDUAL_APPROVED}/"
    assert shows_customer(answer, DemoId.INDIVIDUAL_APPROVED)


def test_a_lockout_on_one_instance_holds_on_the_other(deployment):
    session = requests.Session()
    failures = [
        post_login(session, deployment.first, LOCKED_USERNAME, WRONG_PASSWORD) for _ in range(FAILURE_LIMIT)
    ]
    assert failures[-1].status_code == 429

    answer = post_login(requests.Session(), deployment.second, LOCKED_USERNAME, PASSWORD)

    assert answer.status_code == 429
    assert LOCKED_OUT_TEXT in answer.text


def test_lookups_on_both_instances_land_in_one_audit_table_one_finished_row_each(deployment):
    session = signed_in(deployment.first)
    demo_ids = [list(DemoId)[number % len(DemoId)] for number in range(AUDITED_LOOKUPS)]
    before = last_audit_id(deployment.database_url)

    answers = [
        look_up(session, deployment.instances[number % 2], demo_id) for number, demo_id in enumerate(demo_ids)
    ]

    assert [answer.status_code for answer in answers] == [200] * AUDITED_LOOKUPS
    assert lookups_since(deployment.database_url, before) == [(str(demo_id), "found") for demo_id in demo_ids]


def test_with_postgresql_stopped_both_instances_say_not_ready_and_lookups_are_paused(deployment):
    session = signed_in(deployment.first)

    with postgresql_stopped(deployment):
        ready = [readiness(instance) for instance in deployment.instances]
        lookups = [look_up(session, instance, DemoId.CORPORATE_APPROVED) for instance in deployment.instances]

    assert [answer.status_code for answer in ready] == [503, 503]
    assert [answer.json()["checks"]["database"] for answer in ready] == ["unreachable", "unreachable"]
    assert [answer.status_code for answer in lookups] == [503, 503]
    assert all(PAUSED_TEXT in answer.text and "Traceback" not in answer.text for answer in lookups)


def test_both_instances_answer_again_at_once_when_postgresql_starts_again(deployment):
    """No restart of either instance, and no paused lookup once PostgreSQL is back: each thread's
    connection broken by the outage is checked and replaced before use (CONN_HEALTH_CHECKS)."""
    session = signed_in(deployment.first)
    with postgresql_stopped(deployment):
        assert [readiness(instance).status_code for instance in deployment.instances] == [503, 503]

    ready = [readiness(instance) for instance in deployment.instances]
    lookups = [look_up(session, instance, DemoId.UNDER_REVIEW) for instance in deployment.instances]

    assert [answer.status_code for answer in [*ready, *lookups]] == [200, 200, 200, 200]
    assert all(shows_customer(answer, DemoId.UNDER_REVIEW) for answer in lookups)
