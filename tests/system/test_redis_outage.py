"""Redis stopped under a running instance (issue #21): every page answers, none with a 500.

With REDIS_URL the sessions live in Redis alone, with the shared cache (a bulk lookup's rows,
the webhook rate limit). A soak run stopped Redis for 20 s and sign-in answered 500. Here a
throwaway Redis of this test's own (tests/support/services.py) serves one instance of gunicorn
with gunicorn.conf.py over a SQLite file; it is stopped, or paused, while staff use the pages.

The temporary directory is made with tempfile, as in test_multi_instance.py.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from customers.align.standin.demo import DemoId
from customers.align.standin.server import serving
from tests.support import servers, services
from tests.support.servers import (
    MAKE_PREFIXES,
    SERVE_NAMES,
    inherited_env,
    prepare,
    production_env,
    staff_user_script,
)
from tests.system.test_multi_instance import gunicorn, temporary_directory
from tests.system.test_serve import Instance

STAND_IN_KEY = "redis-outage-stand-in-key"
USERNAME = "redis-outage-tester"
PASSWORD = "redis outage password, not used anywhere else"
HTTP_TIMEOUT_SECONDS = 15
SIGN_IN_BRIEFLY_UNAVAILABLE = "Sign-in is briefly unavailable"
ADA = DemoId.INDIVIDUAL_APPROVED
# The session's read gives up after settings.REDIS_CACHE's 2 s socket timeout, not redis-py's 5 s.
PAUSED_ANSWER_WITHIN_SECONDS = 4.5


class ThrowawayRedis:
    """A Redis on one port that the test can stop and start again, or pause and resume."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = services.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = services.start_redis(self.workdir, self.port)

    def stop(self) -> None:
        """Gone, as a crashed or restarted server is: connections are refused. Its data goes too."""
        if self.process is not None:
            services.stop(self.process)
            self.process = None

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Still listening, answering nothing, as a server that hangs or a network that drops packets."""
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)


@dataclass(frozen=True)
class Deployment:
    instance: Instance
    redis: ThrowawayRedis


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with serving(api_key=STAND_IN_KEY) as stand_in, temporary_directory() as workdir:
        redis = ThrowawayRedis(workdir)
        redis.start()
        try:
            home = workdir / "home"
            home.mkdir()
            env = production_env(
                workdir,
                align_url=stand_in.base_url,
                align_key=STAND_IN_KEY,
                inherited=inherited_env(drop_prefixes=MAKE_PREFIXES, drop_names=SERVE_NAMES),
                HOME=str(home),
                XDG_RUNTIME_DIR=str(home),
                REDIS_URL=redis.url,
                ALIGN_WEBHOOKS_ENABLED="1",
            )
            prepare(env, staff_user_script(USERNAME, PASSWORD))
            with gunicorn(env, workdir / "gunicorn.log") as instance:
                yield Deployment(instance, redis)
        finally:
            redis.stop()


def signed_in(instance: Instance) -> requests.Session:
    session = requests.Session()
    answer = servers.post_login(session, instance.url, USERNAME, PASSWORD, timeout=HTTP_TIMEOUT_SECONDS)
    assert answer.url == f"{instance.url}/customers/", "the login did not lead to the search page"
    return session


def get(session: requests.Session, url: str, **options) -> requests.Response:
    # Connection: close, so no request meets a keep-alive connection gunicorn has just dropped.
    headers = {"Connection": "close"} | options.pop("headers", {})
    return session.get(url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False, **options)


def test_while_redis_is_stopped_every_page_answers_and_none_with_a_500(deployment):
    url = deployment.instance.url
    staff = signed_in(deployment.instance)
    newcomer = requests.Session()

    with deployment.redis.stopped():
        answers = {
            "login page": get(newcomer, f"{url}/accounts/login/"),
            "sign-in": servers.post_login(
                newcomer, url, USERNAME, PASSWORD, timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False
            ),
            "signed-in page": get(staff, f"{url}/customers/"),
            "htmx lookup": get(staff, f"{url}/customers/{ADA}/", headers={"HX-Request": "true"}),
            "bulk lookup": get(staff, f"{url}/customers/bulk/"),
            "readiness": get(requests.Session(), f"{url}/readyz"),
            # Let through the rate limit it can't count, then refused for its missing signature.
            "webhook": requests.post(f"{url}/webhooks/align/", data=b"{}", timeout=HTTP_TIMEOUT_SECONDS),
        }

    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "login page": 200,
        "sign-in": 503,
        "signed-in page": 503,
        "htmx lookup": 503,
        "bulk lookup": 503,
        "readiness": 503,
        "webhook": 401,
    }
    for name in ("sign-in", "signed-in page", "htmx lookup", "bulk lookup"):
        assert SIGN_IN_BRIEFLY_UNAVAILABLE in answers[name].text, name
    assert answers["readiness"].json()["checks"]["cache"] == "unreachable"
    # The cookie is kept: the session is not ended by the outage itself.
    assert "sessionid" in staff.cookies
    assert "sessionid" not in newcomer.cookies


def test_once_redis_is_back_staff_sign_in_again_and_look_customers_up(deployment):
    """This Redis keeps nothing on disk, so its sessions went with it: the login page, not an error."""
    url = deployment.instance.url
    staff = signed_in(deployment.instance)
    with deployment.redis.stopped():
        assert get(staff, f"{url}/customers/").status_code == 503

    before_sign_in = get(staff, f"{url}/customers/")
    again = signed_in(deployment.instance)
    lookup = get(again, f"{url}/customers/{ADA}/")

    assert before_sign_in.status_code == 302
    assert before_sign_in.headers["Location"].startswith("/accounts/login/")
    assert lookup.status_code == 200
    assert get(requests.Session(), f"{url}/readyz").status_code == 200


def test_a_paused_redis_is_a_503_within_seconds_and_the_session_goes_on_once_it_answers(deployment):
    url = deployment.instance.url
    staff = signed_in(deployment.instance)

    with deployment.redis.paused():
        started = time.monotonic()
        paused = get(staff, f"{url}/customers/")
        waited = time.monotonic() - started

    resumed = get(staff, f"{url}/customers/")

    assert paused.status_code == 503
    assert SIGN_IN_BRIEFLY_UNAVAILABLE in paused.text
    assert waited < PAUSED_ANSWER_WITHIN_SECONDS
    assert resumed.status_code == 200
    assert USERNAME in resumed.text
