"""`make soak`: a team's working day on two instances behind nginx, with Redis stopped in the middle.

    .venv/bin/python bench/soak.py [--minutes 10] [--staff 200] [--latency 0.1] [--outage 20]
                                   [--redis-outage restart|pause]
    make soak SOAK_ARGS="--minutes 1 --staff 40"

The deployment, as docs/operations.md, "Deploying", runs several instances, on loopback:
- a throwaway PostgreSQL and Redis on free ports (tests/support/services.py);
- the Align stand-in in a process of its own, answering in `--latency` (100 ms), serving
  generated customers (the drills among them are never asked for);
- migrate, collectstatic and the staff users once; then two instances, each `make serve`'s
  gunicorn with gunicorn.conf.py on a port of its own;
- Debian's nginx running deploy/nginx-site.conf with both instances in its upstream, TLS ending
  there with a throwaway certificate, as tests/system/test_slow_clients.py runs it.
The dashboard gets the deployment variables of tests/support/servers.py (two-factor sign-in off,
`DASHBOARD_REQUIRE_2FA=0`, so a simulated person signs in with a password), the TLS proxy's
(`DJANGO_BEHIND_TLS_PROXY=1`, `DASHBOARD_TRUSTED_PROXIES=127.0.0.1`), `DATABASE_URL` and `REDIS_URL`.

The load: `--staff` people of the Compliance staff group, each with their own signed-in session,
for `--minutes`. Each works at their own pace (a pause of 13.5 s on average between two
actions) through a mix like a working day: a lookup from the search box (htmx), a customer's
page opened from a link (full page), Refresh, Copy link (the audit beacon), a search by e-mail; a
few IDs typed wrong (not found). The last pending customer each person opened stays open in a
tab and checks itself as static/js/watch.js does. A bulk lookup of 50 runs every minute (the
page, the check, the start, a poll a second until done, the CSV). With 200 people that is about
17 lookups a second. Redis is stopped for `--outage` seconds in the middle: killed and started
again empty on its port (`restart`: every session ends, as when a Redis without persistence
restarts), or SIGSTOP and SIGCONT (`pause`: a Redis that hangs, its data kept). A person whose
session ended signs in again before their next action.

Prints a table with issue #21's targets and verdicts, and what staff saw while Redis was down;
asserts nothing. Not part of `make test`: run it on a quiet machine (bench/README.md).
"""

import argparse
import contextlib
import html
import math
import os
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.bulk_bench import STAND_IN_KEY, stand_in  # noqa: E402
from bench.serve_bench import Gunicorn, gunicorn, postgresql_and_redis, server_shape  # noqa: E402
from customers.align.standin.demo import generated_customer, generated_drill  # noqa: E402
from tests.support.servers import (  # noqa: E402
    CSRF_FIELD,
    free_loopback_port,
    inherited_env,
    prepare,
    production_env,
    run_quietly,
    running,
)
from tests.support.services import start_redis, stop  # noqa: E402
from tests.system.test_slow_clients import (  # noqa: E402
    NGINX,
    free_ipv6_loopback_port,
    loopback_has_ipv6,
    nginx_command,
    nginx_prefix,
    site_for_this_machine,
)

PASSWORD = "soak password, not used anywhere else"
STAFF_PREFIX = "soak-staff-"
INSTANCES = 2
GENERATED_CUSTOMERS = 2000
# Between two actions of one person, on average (exponentially distributed): with the pages left
# open checking themselves and a bulk lookup a minute, 200 people make about 17 lookups a second.
THINK_SECONDS = 13.5
ACTION_WEIGHTS = {"lookup": 45, "page": 15, "refresh": 15, "e-mail search": 10, "copy": 15}
TYPED_WRONG_SHARE = 0.03
BULK_SIZE = 50
BULK_EVERY_SECONDS = 60
FIRST_BULK_AT_SECONDS = 15
BULK_POLLS_AT_MOST = 120
# After Redis is back, the time the outage is still counted in: every person's next action,
# with a sign-in where their session ended, falls in it.
RECOVERY_SECONDS = 60
# nginx keeps an idle connection 15 s (keepalive_timeout); a browser whose request meets one that
# nginx just closed sends it again unseen. Connections idle this long are not reused instead.
IDLE_RECONNECT_SECONDS = 10
HTTP_TIMEOUT_SECONDS = 60
SIGN_INS_AT_ONCE = 4
STOP_WITHIN_SECONDS = 15
READY_WITHIN_SECONDS = 30
# What a lookup of each kind answers: its card, the card of a customer Align does not know, or
# for a page's own check, 204 when nothing changed.
EXPECTED = {
    "sign-in page": {200},
    "sign-in": {302},
    "search page": {200},
    "lookup": {200, 404},
    "page": {200, 404},
    "refresh": {200, 404},
    "automatic": {200, 204},
    "changes": {200, 204},
    "e-mail search": {200},
    "copy": {200},
    "bulk page": {200},
    "bulk check": {200},
    "bulk start": {303},
    "bulk poll": {200},
    "bulk CSV": {200},
}
LOOKUP_KINDS = ("lookup", "page", "refresh", "automatic", "e-mail search")
# A lookup on record: its card, or a card saying how Align failed (429, 502, 504), each of which
# the dashboard answers after writing the row's outcome. A 503 may be that or a lookup refused
# for want of an audit row, so it counts as an error only.
LOOKED_UP_STATUSES = {200, 204, 404, 429, 502, 504}
PHASES = ("before", "outage", "recovery", "after")
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')
CARD = re.compile(r'<article class="card customer-card"[^>]*>')
ATTRIBUTE = re.compile(r'(data-[a-z-]+)(?:="([^"]*)")?')
CHECKED = re.compile(r'name="checked" value="([0-9a-f]+)"')
POLL_AFTER = re.compile(r"\?after=(\d+)")
STILL_POLLING = 'hx-trigger="every 1s"'


# --- What the load saw ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str
    at: float  # seconds since the load began, when the request was sent
    seconds: float
    status: int | None  # None: no answer at all (a connection error, a timeout)
    session_ended: bool  # sent to the login page: the session was gone
    expected: bool

    @property
    def shown(self) -> str:
        if self.status is None:
            return "no answer"
        return f"{self.status} session ended" if self.session_ended else str(self.status)


@dataclass(frozen=True)
class Timeline:
    """When the load began (monotonic) and when Redis was stopped and back, in seconds since."""

    started: float
    outage_from: float
    outage_to: float

    def now(self) -> float:
        return time.monotonic() - self.started

    def phase(self, at: float) -> str:
        if at < self.outage_from:
            return "before"
        if at < self.outage_to:
            return "outage"
        return "recovery" if at < self.outage_to + RECOVERY_SECONDS else "after"

    def steady(self, at: float) -> bool:
        return self.phase(at) in ("before", "after")


@dataclass
class Record:
    answers: list[Answer] = field(default_factory=list)
    sign_ins: list[float] = field(default_factory=list)  # when each sign-in after the first succeeded
    batches_started: int = 0
    lateness: list[float] = field(default_factory=list)  # how late each action started, in seconds
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)


# --- A simulated member of staff ------------------------------------------------------------------


@dataclass
class Watch:
    """A pending customer's page left open, checking itself as static/js/watch.js does."""

    mode: str
    refresh_url: str
    every: float
    changes_url: str
    after: str
    stop_at: float  # seconds since the load began; math.inf when it watches as long as it is open
    due: float


@dataclass
class Card:
    customer_id: str
    copyable: bool


class StaffMember:
    """One person: their own session, the card on their screen, and the pending page they left open."""

    def __init__(self, number: int, site_url: str, certificate: Path, record: Record, customers: list[dict]):
        self.username = f"{STAFF_PREFIX}{number:03d}"
        self.site_url = site_url
        self.record = record
        self.customers = customers
        self.random = random.Random(number)  # noqa: S311  (a load, not a secret)
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE, where set, would replace the certificate
        self.session.verify = str(certificate)
        self.csrf = ""
        self.signed_in = False
        self.card: Card | None = None
        self.watch: Watch | None = None
        self.last_sent = time.monotonic()
        self.timeline: Timeline | None = None

    # Requests

    def send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        htmx: bool = False,
        automatic: bool = False,
        data: dict | None = None,
    ) -> requests.Response | None:
        """One request, on record; the answer, or None when there was none or the session had ended."""
        if time.monotonic() - self.last_sent > IDLE_RECONNECT_SECONDS:
            self.session.close()  # its connections: the next request opens a new one
        headers = {"Referer": f"{self.site_url}/customers/", "Origin": self.site_url}
        if htmx:
            headers |= {"HX-Request": "true", "HX-Current-URL": f"{self.site_url}/customers/"}
        if automatic:
            headers["X-Automatic-Request"] = "1"
        if method == "POST" and self.csrf:
            headers["X-CSRFToken"] = self.csrf
        at = self.timeline.now() if self.timeline else 0.0
        began = time.perf_counter()
        try:
            answer = self.session.request(
                method,
                self.site_url + path,
                data=data,
                headers=headers,
                timeout=HTTP_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
        except requests.RequestException:
            answer = None
        seconds = time.perf_counter() - began
        self.last_sent = time.monotonic()
        ended = answer is not None and sent_to_sign_in(answer)
        status = None if answer is None else answer.status_code
        self.record.add(Answer(kind, at, seconds, status, ended, ended or status in EXPECTED[kind]))
        if ended:
            self.signed_in = False
            self.watch = None  # the page went to the login page, as watch.js sends it there
            return None
        return answer

    def sign_in(self) -> bool:
        """The login form as a browser sends it, then the search page it lands on (for its CSRF token)."""
        form = self.send("sign-in page", "GET", "/accounts/login/")
        token = CSRF_FIELD.search(form.text) if form is not None and form.status_code == 200 else None
        if token is None:
            return False
        answer = self.send(
            "sign-in",
            "POST",
            "/accounts/login/",
            data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
        )
        if answer is None or answer.status_code != 302:
            return False
        page = self.send("search page", "GET", "/customers/")
        token = CSRF_HEADER.search(page.text) if page is not None and page.status_code == 200 else None
        if token is None:
            return False
        self.csrf = token[1]
        if self.timeline is not None:
            with self.record.lock:
                self.record.sign_ins.append(self.timeline.now())
        self.signed_in = True
        return True

    # A working day

    def work(
        self, timeline: Timeline, until: float, bulk_due: queue.Queue, stopping: threading.Event
    ) -> None:
        self.timeline = timeline
        next_action = self.random.uniform(0, THINK_SECONDS)
        while not stopping.is_set():
            watch_due = self.watch.due if self.watch else math.inf
            due = min(next_action, watch_due)
            if due >= until or stopping.wait(max(0.0, due - timeline.now())):
                return
            with self.record.lock:
                self.record.lateness.append(timeline.now() - due)
            if watch_due <= next_action:
                self.check_watch()
                continue
            if self.signed_in or self.sign_in():
                self.act(bulk_due)
            next_action = timeline.now() + self.random.expovariate(1 / THINK_SECONDS)

    def act(self, bulk_due: queue.Queue) -> None:
        with contextlib.suppress(queue.Empty):
            bulk_due.get_nowait()
            self.bulk_lookup()
            return
        action = self.random.choices(list(ACTION_WEIGHTS), weights=list(ACTION_WEIGHTS.values()))[0]
        if action == "refresh" and self.card is None:
            action = "lookup"
        if action == "copy" and (self.card is None or not self.card.copyable):
            action = "lookup"
        customer = self.random.choice(self.customers)
        if action == "lookup":
            typed = str(uuid.uuid4()) if self.random.random() < TYPED_WRONG_SHARE else customer["customer_id"]
            self.show(self.send("lookup", "POST", "/customers/", htmx=True, data={"customer_id": typed}))
        elif action == "page":
            self.show(self.send("page", "GET", f"/customers/{customer['customer_id']}/"))
        elif action == "refresh":
            path = f"/customers/{self.card.customer_id}/?refresh=1"
            self.show(self.send("refresh", "GET", path, htmx=True))
        elif action == "e-mail search":
            data = {"customer_id": customer["email"]}
            self.show(self.send("e-mail search", "POST", "/customers/", htmx=True, data=data))
        else:
            self.send("copy", "POST", f"/customers/{self.card.customer_id}/link-copied/", htmx=True)

    def show(self, answer: requests.Response | None) -> None:
        """What the answer puts on screen: the card, and a watch if its customer is pending."""
        if answer is None or answer.status_code not in (200, 404):
            return
        card = CARD.search(answer.text)
        if card is None:
            self.card = None
            return
        attributes = {name: html.unescape(value or "") for name, value in ATTRIBUTE.findall(card[0])}
        self.card = Card(attributes["data-customer-id"], "data-audit-beacon" in answer.text)
        if "data-kyc-watch" in attributes:
            every = float(attributes["data-watch-seconds"])
            stop_after = float(attributes.get("data-watch-stop-after") or 0)
            now = self.timeline.now()
            self.watch = Watch(
                mode=attributes["data-kyc-watch"],
                refresh_url=attributes["data-watch-refresh"],
                every=every,
                changes_url=attributes.get("data-watch-changes", ""),
                after=attributes.get("data-watch-after", "0"),
                stop_at=now + stop_after if stop_after else math.inf,
                due=now + every,
            )

    def check_watch(self) -> None:
        """watch.js's check: ask for news (webhooks) or look the customer up again (without them)."""
        watch = self.watch
        if watch.due >= watch.stop_at:
            self.watch = None
            return
        watch.due = self.timeline.now() + watch.every
        if watch.mode == "webhook":
            news = self.send(
                "changes", "GET", f"{watch.changes_url}?after={watch.after}", htmx=True, automatic=True
            )
            if news is None or news.status_code != 200:
                return
        answer = self.send("automatic", "GET", watch.refresh_url, htmx=True, automatic=True)
        if answer is not None and answer.status_code == 200:
            self.show(answer)
            if self.watch is not None and self.watch.refresh_url == watch.refresh_url:
                self.watch.due, self.watch.stop_at = watch.due, watch.stop_at

    def bulk_lookup(self) -> None:
        """The bulk page, the list checked, started, polled once a second until done, and its CSV."""
        page = self.send("bulk page", "GET", "/customers/bulk/")
        token = CSRF_FIELD.search(page.text) if page is not None and page.status_code == 200 else None
        if token is None:
            return
        ids = "\n".join(customer["customer_id"] for customer in self.random.sample(self.customers, BULK_SIZE))
        form = {"customer_ids": ids, "csrfmiddlewaretoken": token[1]}
        checked = self.send("bulk check", "POST", "/customers/bulk/", data=form)
        found = CHECKED.search(checked.text) if checked is not None and checked.status_code == 200 else None
        if found is None:
            return
        started = self.send("bulk start", "POST", "/customers/bulk/start/", data=form | {"checked": found[1]})
        if started is None or started.status_code != 303:
            return
        with self.record.lock:
            self.record.batches_started += 1
        batch_path = started.headers["Location"]
        after = "0"
        for _ in range(BULK_POLLS_AT_MOST):
            time.sleep(1)
            poll = self.send("bulk poll", "GET", f"{batch_path}?after={after}", htmx=True)
            if poll is None or poll.status_code != 200:
                return
            if STILL_POLLING not in poll.text:
                break
            after = POLL_AFTER.findall(poll.text)[-1]
        self.send("bulk CSV", "GET", f"{batch_path}export.csv")


def sent_to_sign_in(answer: requests.Response) -> bool:
    """The session had ended: htmx is told to go to the login page, a page is redirected there."""
    if answer.headers.get("HX-Redirect", "").startswith("/accounts/login/"):
        return True
    return answer.status_code == 302 and answer.headers.get("Location", "").startswith("/accounts/login/")


# --- The deployment -------------------------------------------------------------------------------


def staff_users_script(count: int) -> str:
    """`manage.py shell -c` text: `count` people in the Compliance staff group, one password hashed once."""
    return f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
users = get_user_model().objects
password = make_password({PASSWORD!r})
names = [f"{STAFF_PREFIX}{{number:03d}}" for number in range({count})]
users.bulk_create([users.model(username=name, password=password) for name in names])
Group.objects.get(name="Compliance staff").user_set.add(*users.filter(username__startswith={STAFF_PREFIX!r}))
"""


def certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, and its key."""
    cert, key = folder / "certificate.pem", folder / "key.pem"
    run_quietly(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ]
    )
    return cert, key


@contextlib.contextmanager
def nginx(instances: list[Gunicorn], cert: Path, key: Path) -> Iterator[str]:
    """Debian's nginx running deploy/nginx-site.conf before every instance; its HTTPS address (IPv4).

    The file's upstream names one address; a deployment of several names each on a `server`
    line of that upstream, which is what filling the placeholder with all of them does here. Its
    IPv6 lines listen on [::1] where loopback has IPv6, else are commented out as the file says.
    """
    if not os.access(NGINX, os.X_OK):
        raise SystemExit(f"{NGINX} is missing: `make nginx` installs Debian's nginx")
    ipv6 = loopback_has_ipv6()
    https_port, http_port = free_loopback_port(), free_loopback_port()
    https_ipv6_port, http_ipv6_port = (
        (free_ipv6_loopback_port(), free_ipv6_loopback_port()) if ipv6 else (0, 0)
    )
    addresses = [instance.url.removeprefix("http://") for instance in instances]
    placeholders = {
        "@GUNICORN_ADDRESS@": ";\n    server ".join(addresses),
        "@HTTP_LISTEN@": f"127.0.0.1:{http_port}",
        "@HTTPS_LISTEN@": f"127.0.0.1:{https_port}",
        "@HTTP_LISTEN_IPV6@": f"[::1]:{http_ipv6_port}",
        "@HTTPS_LISTEN_IPV6@": f"[::1]:{https_ipv6_port}",
        "@SERVER_NAME@": "127.0.0.1",
        "@TLS_CERTIFICATE@": str(cert),
        "@TLS_CERTIFICATE_KEY@": str(key),
    }
    prefix = nginx_prefix()
    try:
        (prefix / "kyc-desk.conf").write_text(site_for_this_machine(placeholders, ipv6=ipv6))
        with running(
            [*nginx_command(prefix), "-g", "daemon off;"],
            log_path=prefix / "output.log",
            stop_within=STOP_WITHIN_SECONDS,
        ) as process:
            url = f"https://127.0.0.1:{https_port}"
            probe = requests.Session()
            probe.trust_env, probe.verify = False, str(cert)
            deadline = time.monotonic() + READY_WITHIN_SECONDS
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"nginx did not start: {(prefix / 'error.log').read_text()}")
                with contextlib.suppress(requests.RequestException):
                    if probe.get(f"{url}/accounts/login/", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            yield url
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


class RedisOutage:
    """Redis stopped and back: killed and started again empty on its port, or paused and continued."""

    def __init__(self, redis_url: str, mode: str, folder: Path) -> None:
        self.port = int(redis_url.rsplit(":", 1)[1].split("/", 1)[0])
        self.mode = mode
        self.folder = folder
        self.pid = our_redis_pid(self.port)
        self.restarted: subprocess.Popen | None = None
        self.paused = False

    def begin(self) -> None:
        if self.mode == "pause":
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True
            return
        os.kill(self.pid, signal.SIGKILL)
        # Left for tests/support/services.py to reap when it stops what it started.
        while port_open(self.port):
            time.sleep(0.05)

    def end(self) -> None:
        if self.mode == "pause":
            os.kill(self.pid, signal.SIGCONT)
            self.paused = False
            return
        # On its port, as tests/support/services.py started it: nothing kept, so it starts empty.
        self.restarted = start_redis(self.folder, self.port)

    def close(self) -> None:
        if self.paused:
            os.kill(self.pid, signal.SIGCONT)
        if self.restarted is not None:
            stop(self.restarted)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def our_redis_pid(port: int) -> int:
    """The redis-server this process started on `port`: a child of ours, never someone else's."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            name, rest = stat.read_text().split(" (", 1)[1].rsplit(") ", 1)
            title = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
            if name == "redis-server" and int(rest.split()[1]) == os.getpid() and f":{port}" in title:
                return int(stat.parent.name)
    raise SystemExit(f"no redis-server of ours found on port {port}")


def resident_kib(pid: int) -> int | None:
    """VmRSS of a process, or None once it has gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def audit_counts(database_url: str) -> dict[str, int]:
    """The audit trail as PostgreSQL holds it after the load: finished and unfinished rows, per action."""
    counts: dict[str, int] = Counter()
    with psycopg.connect(database_url) as database:
        rows = database.execute(
            "SELECT action, batch_id IS NOT NULL, outcome = 'started', count(*) "
            "FROM customers_auditevent GROUP BY 1, 2, 3"
        ).fetchall()
        for action, in_batch, unfinished, count in rows:
            name = "bulk row" if in_batch else action
            counts[f"{name} {'started' if unfinished else 'finished'}"] += count
        counts["bulk lookups"] = database.execute("SELECT count(*) FROM customers_bulklookup").fetchone()[0]
        counts["bulk CSVs"] = database.execute("SELECT count(*) FROM customers_bulklookupexport").fetchone()[
            0
        ]
    return counts


# --- The run --------------------------------------------------------------------------------------


@dataclass
class SoakResult:
    options: argparse.Namespace
    shape: tuple[int, int]
    timeline: Timeline
    record: Record
    rss: dict[int, list[tuple[float, int | None]]]  # worker pid: (seconds, VmRSS KiB) samples
    audit: dict[str, int]
    own_cpu_seconds: float


def working_customers() -> list[dict]:
    """The generated customers that answer as customers do: the drills among them are left out."""
    return [
        generated_customer(index) for index in range(GENERATED_CUSTOMERS) if generated_drill(index) is None
    ]


def run(options: argparse.Namespace) -> SoakResult:
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-soak-"))
    try:
        with (
            postgresql_and_redis() as services,
            stand_in(options.latency, GENERATED_CUSTOMERS) as (align_url, _),
        ):
            env = production_env(
                workdir,
                align_url=align_url,
                align_key=STAND_IN_KEY,
                inherited=inherited_env(drop_names=("DATABASE_URL", "REDIS_URL")),
                # TLS ends at nginx, in front of gunicorn, as docs/operations.md, "Deploying", runs it.
                DJANGO_HTTPS_ONLY="1",
                DJANGO_BEHIND_TLS_PROXY="1",
                DASHBOARD_TRUSTED_PROXIES="127.0.0.1",
                HOME=str(workdir),
                **services,
            )
            print(f"Migrating, collecting static files, and {options.staff} staff users", flush=True)
            prepare(env, staff_users_script(options.staff), timeout=300)
            shape = server_shape(env)
            cert, key = certificate(workdir)
            probe = {"X-Forwarded-Proto": "https"}
            with contextlib.ExitStack() as stack:
                instances = [
                    stack.enter_context(gunicorn(env, workdir / f"gunicorn-{number}.log", probe))
                    for number in range(1, INSTANCES + 1)
                ]
                site_url = stack.enter_context(nginx(instances, cert, key))
                outage = RedisOutage(services["REDIS_URL"], options.redis_outage, workdir)
                stack.callback(outage.close)
                return load(options, shape, instances, site_url, cert, outage, services["DATABASE_URL"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def load(
    options: argparse.Namespace,
    shape: tuple[int, int],
    instances: list[Gunicorn],
    site_url: str,
    cert: Path,
    outage: RedisOutage,
    database_url: str,
) -> SoakResult:
    record = Record()
    customers = working_customers()
    staff = [StaffMember(number, site_url, cert, record, customers) for number in range(options.staff)]
    print(f"{options.staff} people signing in through nginx at {site_url}", flush=True)
    with ThreadPoolExecutor(SIGN_INS_AT_ONCE) as pool:
        signed_in = list(pool.map(StaffMember.sign_in, staff))
    if not all(signed_in):
        raise SystemExit(f"{signed_in.count(False)} of {options.staff} could not sign in")
    record.answers.clear()

    duration = options.minutes * 60
    outage_from = duration / 2 - options.outage / 2
    timeline = Timeline(time.monotonic(), outage_from, outage_from + options.outage)
    stopping = threading.Event()
    bulk_due: queue.Queue = queue.Queue()
    workers = [pid for instance in instances for pid in instance.worker_pids()]
    rss: dict[int, list[tuple[float, int | None]]] = defaultdict(list)
    sample_every = min(60.0, duration / 10)

    def sample() -> None:
        at = timeline.now()
        for pid in workers:
            rss[pid].append((at, resident_kib(pid)))
        with record.lock:
            unexpected = sum(1 for answer in record.answers if not answer.expected)
            print(
                f"[{at:.0f} s] {len(record.answers):,} requests, {unexpected} unexpected answers", flush=True
            )

    def outage_begins() -> None:
        print(f"[{timeline.now():.0f} s] Redis stopped ({options.redis_outage})", flush=True)
        outage.begin()

    def outage_ends() -> None:
        outage.end()
        print(f"[{timeline.now():.0f} s] Redis back", flush=True)

    events: list[tuple[float, Callable[[], None]]] = [
        *((at * sample_every, sample) for at in range(int(duration / sample_every) + 1)),
        *(
            (at, lambda: bulk_due.put(True))
            for at in range(FIRST_BULK_AT_SECONDS, int(duration), BULK_EVERY_SECONDS)
        ),
        (timeline.outage_from, outage_begins),
        (timeline.outage_to, outage_ends),
    ]
    events.sort(key=lambda event: event[0])
    print(
        f"Load: {options.minutes:g} min, {options.staff} people; "
        f"Redis down from {timeline.outage_from:.0f} s to {timeline.outage_to:.0f} s",
        flush=True,
    )
    own_before = time.process_time()
    threads = [
        threading.Thread(target=person.work, args=(timeline, duration, bulk_due, stopping), daemon=True)
        for person in staff
    ]
    for thread in threads:
        thread.start()
    try:
        for at, event in events:
            time.sleep(max(0.0, at - timeline.now()))
            event()
    except BaseException:
        stopping.set()
        raise
    finally:
        # Each person ends the action under way, and takes no other.
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT_SECONDS + BULK_POLLS_AT_MOST)
    own_cpu = time.process_time() - own_before
    return SoakResult(options, shape, timeline, record, rss, audit_counts(database_url), own_cpu)


# --- The table ------------------------------------------------------------------------------------


def percentile_ms(seconds: list[float], percent: int) -> float:
    if len(seconds) < 2:
        return seconds[0] * 1000 if seconds else math.nan
    return statistics.quantiles(seconds, n=100, method="inclusive")[percent - 1] * 1000


def print_report(outcome: SoakResult) -> None:
    options, timeline, record = outcome.options, outcome.timeline, outcome.record
    answers = record.answers
    duration = options.minutes * 60
    steady = [answer for answer in answers if timeline.steady(answer.at)]
    troubled = [answer for answer in answers if not timeline.steady(answer.at)]
    steady_seconds = timeline.outage_from + max(0.0, duration - timeline.outage_to - RECOVERY_SECONDS)
    lookups = [answer for answer in answers if answer.kind in LOOKUP_KINDS]
    steady_lookups = [answer.seconds for answer in steady if answer.kind in LOOKUP_KINDS]
    p99_target_ms = 1.5 * options.latency * 1000 + 50
    p99 = percentile_ms(steady_lookups, 99)
    errors = [answer for answer in steady if not answer.expected]
    server_errors = [answer for answer in troubled if answer.status == 500]
    workers, threads = outcome.shape

    print(
        f"\nSoak: {options.minutes:g} min, {options.staff} people, stand-in {options.latency * 1000:.0f} ms; "
        f"{INSTANCES} instances ({workers} x {threads} each) behind nginx, PostgreSQL and Redis; Redis "
        f"{'killed and started again empty' if options.redis_outage == 'restart' else 'paused (SIGSTOP)'} "
        f"from {timeline.outage_from:.0f} s to {timeline.outage_to:.0f} s (outage); recovery: the "
        f"{RECOVERY_SECONDS:.0f} s after; steady: the rest. Requests by when they were sent."
    )
    print(
        "\n| kind | requests | steady p50 / p99 / max (ms) | statuses, steady | statuses, outage "
        "| outage max (ms) | statuses, recovery |"
    )
    print("|---|---:|---|---|---|---:|---|")
    for kind in EXPECTED:
        of_kind = [answer for answer in answers if answer.kind == kind]
        if not of_kind:
            continue
        calm = [answer.seconds for answer in steady if answer.kind == kind]
        timing = (
            f"{percentile_ms(calm, 50):.0f} / {percentile_ms(calm, 99):.0f} / {max(calm) * 1000:.0f}"
            if calm
            else ""
        )
        by_phase = {
            phase: [answer for answer in of_kind if timeline.phase(answer.at) == phase] for phase in PHASES
        }
        worst = max((answer.seconds for answer in by_phase["outage"]), default=None)
        print(
            f"| {kind} | {len(of_kind):,} | {timing} | {statuses(by_phase['before'] + by_phase['after'])} "
            f"| {statuses(by_phase['outage'])} | {'' if worst is None else f'{worst * 1000:.0f}'} "
            f"| {statuses(by_phase['recovery'])} |"
        )

    made = made_counts(answers, record.batches_started)
    rows = [
        (
            "lookups a second, steady (all kinds that ask Align; bulk rows apart)",
            f"{sum(1 for a in steady if a.kind in LOOKUP_KINDS) / steady_seconds:.1f}",
            "about 17 with 200 people",
            None,
        ),
        ("requests a second, whole run", f"{len(answers) / duration:.1f}", "(reported)", None),
        (
            f"lookups p50 / p99 (ms), steady, n={len(steady_lookups):,}",
            f"{percentile_ms(steady_lookups, 50):.0f} / {p99:.0f}",
            f"p99 <= {p99_target_ms:.0f}",
            p99 <= p99_target_ms,
        ),
        ("errors, steady: 5xx, no answer, or a status not expected", error_summary(errors), "0", not errors),
        ("500s in the outage and the recovery", str(len(server_errors)), "0", not server_errors),
        (
            "sign-ins again (sessions ended): before / outage / recovery / after",
            " / ".join(
                str(sum(1 for at in record.sign_ins if timeline.phase(at) == phase)) for phase in PHASES
            ),
            "(reported)",
            None,
        ),
    ]
    for label, action in (
        ("lookups", "lookup"),
        ("e-mail searches", "email_search"),
        ("link copies", "link_copied"),
        ("bulk rows", "bulk row"),
    ):
        finished = outcome.audit[f"{action} finished"]
        unfinished = outcome.audit[f"{action} started"]
        rows.append(
            (
                f"audit rows, {label}: made by the load / finished rows / left started",
                f"{made[action]:,} / {finished:,} / {unfinished:,}",
                "equal, 0 left",
                made[action] == finished and not unfinished,
            )
        )
    rows.append(
        (
            "bulk lookups started / on record; CSVs downloaded / on record",
            f"{record.batches_started} / {outcome.audit['bulk lookups']}; "
            f"{made['csv']} / {outcome.audit['bulk CSVs']}",
            "equal",
            record.batches_started == outcome.audit["bulk lookups"]
            and made["csv"] == outcome.audit["bulk CSVs"],
        )
    )
    rows.append(rss_row(outcome.rss, duration))
    lateness = percentile_ms(record.lateness, 99)
    rows.append(
        (
            "load generator: CPU, p99 of how late an action started (ms)",
            f"{outcome.own_cpu_seconds / duration:.0%} of a core, {lateness:.0f}",
            "(reported)",
            None,
        )
    )
    print("\n| measure | value | target | result |\n|---|---|---|---|")
    for label, value, target, passed in rows:
        verdict = "" if passed is None else ("PASS" if passed else "MISS")
        print(f"| {label} | {value} | {target} | {verdict} |")
    print(f"\n{len(lookups):,} lookups in all (outage included).")


def statuses(answers) -> str:
    counted = Counter(answer.shown for answer in answers)
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(counted.items()))


def error_summary(errors: list[Answer]) -> str:
    if not errors:
        return "0"
    counted = Counter(f"{answer.kind} {answer.shown}" for answer in errors)
    return f"{len(errors)} ({', '.join(f'{what}: {count}' for what, count in counted.most_common(5))})"


def made_counts(answers: list[Answer], batches_started: int) -> Counter:
    """What the load did that the audit trail must hold exactly once, by the trail's actions."""
    made: Counter = Counter()
    for answer in answers:
        if answer.session_ended or answer.status is None:
            continue
        if answer.kind in ("lookup", "page", "refresh", "automatic") and answer.status in LOOKED_UP_STATUSES:
            made["lookup"] += 1
        elif answer.kind == "e-mail search" and answer.status in LOOKED_UP_STATUSES:
            made["email_search"] += 1
        elif answer.kind == "copy" and answer.status == 200:
            made["link_copied"] += 1
        elif answer.kind == "bulk CSV" and answer.status == 200:
            made["csv"] += 1
    made["bulk row"] = BULK_SIZE * batches_started
    return made


def rss_row(
    rss: dict[int, list[tuple[float, int | None]]], duration: float
) -> tuple[str, str, str, bool | None]:
    """Each worker's VmRSS from a fifth of the run (minute 2 of 10) to its end."""
    growths = []
    for samples in rss.values():
        after_a_fifth = [kib for at, kib in samples if at >= duration / 5 and kib]
        if len(after_a_fifth) >= 2:
            growths.append(after_a_fifth[-1] / after_a_fifth[0] - 1)
    if not growths:
        return ("worker RSS growth", "no samples", "<= 5 %", None)
    return (
        f"worker RSS growth from {duration / 5 / 60:g} min to the end, each of {len(growths)} workers",
        ", ".join(f"{growth:+.1%}" for growth in sorted(growths)),
        "<= 5 %",
        max(growths) <= 0.05,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the load (10)")
    parser.add_argument("--staff", type=int, default=200, help="people, each with their own session (200)")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="the stand-in's answer time in seconds (0.1)"
    )
    parser.add_argument("--outage", type=float, default=20, help="seconds Redis is down, in the middle (20)")
    parser.add_argument(
        "--redis-outage",
        choices=["restart", "pause"],
        default="restart",
        help="restart (default): killed, started again empty; pause: SIGSTOP, then SIGCONT",
    )
    options = parser.parse_args()
    if options.outage >= options.minutes * 60:
        parser.error("the outage must be shorter than the load")
    # Stopped from outside, still stop the servers on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    print_report(run(options))
    print(f"Whole run: {time.monotonic() - started:.0f} s. Load generator and servers share this machine.")


if __name__ == "__main__":
    main()
