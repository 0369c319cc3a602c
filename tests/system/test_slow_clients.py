"""Slow clients against the dashboard as docs/operations.md, "Deploying", runs it: nginx before gunicorn.

Each gunicorn thread waits without a time limit for a connection that has sent part of a request,
so a few dozen clients that send a byte, or trickle their headers or a POST body, hold all 16
threads and nobody else gets an answer, login included (the last test shows it). nginx reads
every request whole before gunicorn sees it, without a thread per client.

gunicorn runs with gunicorn.conf.py over a fresh SQLite file, against the stand-in in this
process; Debian's nginx (`make test` installs it where missing) runs deploy/nginx-site.conf,
rendered onto free loopback ports with a throwaway certificate, with TLS ending at nginx as in
production. Both are started once for the module and stopped, with their workers, at its end.
"""

import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.utils.html import escape

from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.server import serving
from tests.support.servers import (
    PROJECT_DIR,
    free_loopback_port,
    post_login,
    prepare,
    production_env,
    run_captured,
    run_quietly,
    running,
    staff_user_script,
    wait_until_answers,
)

NGINX_SITE = PROJECT_DIR / "deploy" / "nginx-site.conf"
GUNICORN_CONFIG = PROJECT_DIR / "gunicorn.conf.py"
NGINX = "/usr/sbin/nginx"
STAND_IN_KEY = "slow-clients-stand-in-key"
USERNAME = "slow-clients-tester"
PASSWORD = "slow clients test password, not used anywhere else"

SLOW_CLIENTS = 64
ANSWER_WITHIN_SECONDS = 1.0
# Long enough for the slow clients' bytes to arrive and be picked up by whoever serves them.
SETTLE_SECONDS = 0.5
TRICKLE_EVERY_SECONDS = 0.5
# The trickle stops by itself after this, whatever happens to the test.
TRICKLE_AT_MOST_SECONDS = 60
# A login hashes the password (about 0.3 s of CPU) on a machine the slow clients share.
LOGIN_TIMEOUT_SECONDS = 10
READY_WITHIN_SECONDS = 15
STOP_WITHIN_SECONDS = 10
FORGED_CLIENT_IP = "203.0.113.9"
TYPED_TEXT = "jane.doe.typed.by.mistake"


# --- The servers ----------------------------------------------------------------------------


def wait_until_ready(server: subprocess.Popen, answers: Callable[[], bool], log_path: Path) -> None:
    wait_until_answers(server, answers, log_path, within=READY_WITHIN_SECONDS, name=server.args[0])


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slow-clients")


@pytest.fixture(scope="module")
def stand_in():
    with serving(api_key=STAND_IN_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def server_env(stand_in, work_dir) -> dict[str, str]:
    """The production environment of docs/operations.md, "Deploying", on loopback, over a migrated
    database."""
    env = production_env(
        work_dir,
        align_url=stand_in.base_url,
        align_key=STAND_IN_KEY,
        # TLS ends at nginx, in front of gunicorn, as docs/operations.md, "Deploying", runs it.
        DJANGO_HTTPS_ONLY="1",
        DJANGO_BEHIND_TLS_PROXY="1",
        DASHBOARD_TRUSTED_PROXIES="127.0.0.1",
        # nginx answers on IPv6 too, where the browser's Host is [::1].
        DJANGO_ALLOWED_HOSTS="127.0.0.1,[::1]",
    )
    prepare(env, staff_user_script(USERNAME, PASSWORD))
    return env


@contextmanager
def gunicorn(server_env: dict[str, str], log_path: Path, *options: str) -> Iterator[tuple[str, int]]:
    """gunicorn with the repository's configuration, on a free loopback port instead of 8000."""
    address = ("127.0.0.1", free_loopback_port())
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        f"--config={GUNICORN_CONFIG}",
        f"--bind={address[0]}:{address[1]}",
        # Parallel runs must not fight over the default control socket in the home directory.
        "--no-control-socket",
        *options,
    ]
    with running(command, log_path=log_path, env=server_env, stop_within=STOP_WITHIN_SECONDS) as server:
        wait_until_ready(server, lambda: bare_get(address).status_code == 200, log_path)
        yield address


@pytest.fixture(scope="module")
def gunicorn_address(server_env, work_dir) -> Iterator[tuple[str, int]]:
    with gunicorn(server_env, work_dir / "gunicorn.log") as address:
        yield address


@pytest.fixture(scope="module")
def certificate(work_dir) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and ::1, and its key."""
    cert, key = work_dir / "certificate.pem", work_dir / "key.pem"
    run_quietly(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *(
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,IP:::1",
            ),
            *("-keyout", str(key), "-out", str(cert)),
        ]
    )
    return cert, key


# Stands in for Debian's /etc/nginx/nginx.conf, which includes sites-enabled/ in its http block;
# every path nginx writes to is in the throwaway directory.
NGINX_MAIN_CONFIG = """
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    # Debian's default, which deploy/nginx-site.conf turns off for its own servers.
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/kyc-desk.conf;
}}
"""


@dataclass(frozen=True)
class Nginx:
    https_url: str
    http_url: str
    certificate: Path
    access_log: Path
    # None where this machine has no IPv6 on loopback, and the site's IPv6 lines were commented out.
    https_ipv6_url: str | None
    http_ipv6_url: str | None

    def session(self) -> requests.Session:
        session = requests.Session()
        # Otherwise REQUESTS_CA_BUNDLE, where set, would replace the certificate given here.
        session.trust_env = False
        session.verify = str(self.certificate)
        return session


def loopback_has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_ipv6_loopback_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        return probe.getsockname()[1]


def site_for_this_machine(placeholders: dict[str, str], *, ipv6: bool) -> str:
    """deploy/nginx-site.conf filled in; without IPv6, its IPv6 lines commented out as it says to."""
    site = NGINX_SITE.read_text()
    if not ipv6:
        site = re.sub(r"^(\s*)(listen @HTTPS?_LISTEN_IPV6@)", r"\1# \2", site, flags=re.MULTILINE)
    for placeholder, value in placeholders.items():
        site = site.replace(placeholder, value)
    assert not re.search(r"^\s*[^#\s].*@[A-Z_0-9]+@", site, flags=re.MULTILINE), (
        "a placeholder in deploy/nginx-site.conf was not filled"
    )
    return site


def nginx_prefix() -> Path:
    """A folder for nginx's files. Run as root, nginx's workers become nobody, who must reach the
    paths they write to; pytest's temporary directories are private to their owner, so this one is
    readable by all."""
    prefix = Path(tempfile.mkdtemp(prefix="kyc-desk-nginx-"))
    prefix.chmod(0o755)
    (prefix / "nginx.conf").write_text(NGINX_MAIN_CONFIG.format(prefix=prefix))
    return prefix


def nginx_command(prefix: Path) -> list[str]:
    return [NGINX, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]


@pytest.fixture(scope="module")
def nginx(gunicorn_address, certificate) -> Iterator[Nginx]:
    """Debian's nginx running deploy/nginx-site.conf, its placeholders filled for this machine, on
    IPv6 too where loopback has it."""
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"{NGINX} is missing: `make test` installs Debian's nginx-light (or nginx)")
    ipv6 = loopback_has_ipv6()
    https_port, http_port = free_loopback_port(), free_loopback_port()
    https_ipv6_port, http_ipv6_port = (
        (free_ipv6_loopback_port(), free_ipv6_loopback_port()) if ipv6 else (0, 0)
    )
    placeholders = {
        "@GUNICORN_ADDRESS@": f"{gunicorn_address[0]}:{gunicorn_address[1]}",
        "@HTTP_LISTEN@": f"127.0.0.1:{http_port}",
        "@HTTPS_LISTEN@": f"127.0.0.1:{https_port}",
        "@HTTP_LISTEN_IPV6@": f"[::1]:{http_ipv6_port}",
        "@HTTPS_LISTEN_IPV6@": f"[::1]:{https_ipv6_port}",
        "@SERVER_NAME@": "127.0.0.1",
        "@TLS_CERTIFICATE@": str(certificate[0]),
        "@TLS_CERTIFICATE_KEY@": str(certificate[1]),
    }
    site = site_for_this_machine(placeholders, ipv6=ipv6)
    prefix = nginx_prefix()
    try:
        (prefix / "kyc-desk.conf").write_text(site)
        with running(
            [*nginx_command(prefix), "-g", "daemon off;"],
            log_path=prefix / "output.log",
            env=None,
            stop_within=STOP_WITHIN_SECONDS,
        ) as server:
            served = Nginx(
                https_url=f"https://127.0.0.1:{https_port}",
                http_url=f"http://127.0.0.1:{http_port}",
                certificate=certificate[0],
                access_log=prefix / "access.log",
                https_ipv6_url=f"https://[::1]:{https_ipv6_port}" if ipv6 else None,
                http_ipv6_url=f"http://[::1]:{http_ipv6_port}" if ipv6 else None,
            )
            wait_until_ready(
                server,
                lambda: served.session().get(f"{served.https_url}/accounts/login/", timeout=1).ok,
                prefix / "error.log",
            )
            yield served
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def bare_get(address: tuple[str, int], *, timeout: float = 1) -> requests.Response:
    """The login page straight from gunicorn, saying it came over TLS as nginx does."""
    return requests.get(
        f"http://{address[0]}:{address[1]}/accounts/login/",
        headers={"X-Forwarded-Proto": "https"},
        timeout=timeout,
    )


# --- The slow clients -----------------------------------------------------------------------


def one_byte() -> Iterator[bytes]:
    """The first byte of a request, then nothing."""
    yield b"G"


def trickled_headers() -> Iterator[bytes]:
    """A request line, then a header one byte at a time that never ends."""
    yield b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    while True:
        yield b"a"


def trickled_body() -> Iterator[bytes]:
    """A login POST's complete headers, then its body one byte at a time.

    It says it came over TLS, as nginx would, from the login page, with a CSRF cookie: so Django
    reads the body for the form's CSRF token and waits for it, rather than turning the request
    away at once (a redirect to HTTPS, a 403) as it would without them.
    """
    yield (
        b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        b"Referer: https://127.0.0.1/accounts/login/\r\nCookie: csrftoken=" + b"a" * 32 + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nusername="
    )
    while True:
        yield b"a"


SLOW_KINDS = (one_byte, trickled_headers, trickled_body)


def trickle(senders: list[tuple[socket.socket, Iterator[bytes]]], stop: threading.Event) -> None:
    """Send each slow client's next byte every TRICKLE_EVERY_SECONDS, for TRICKLE_AT_MOST_SECONDS at most."""
    deadline = time.monotonic() + TRICKLE_AT_MOST_SECONDS
    while not stop.wait(TRICKLE_EVERY_SECONDS) and time.monotonic() < deadline:
        for sock, sender in senders:
            chunk = next(sender, None)
            if chunk is None:
                continue
            with suppress(OSError):  # the server has dropped this one, as it may
                sock.sendall(chunk)


@contextmanager
def slow_clients(
    connect: Callable[[], socket.socket], kinds: Sequence[Callable[[], Iterator[bytes]]] = SLOW_KINDS
) -> Iterator[None]:
    """SLOW_CLIENTS connections, as many of each kind, all stopped and closed on exit."""
    senders: list[tuple[socket.socket, Iterator[bytes]]] = []
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(senders, stop), name="slow-clients", daemon=True)
    try:
        for number in range(SLOW_CLIENTS):
            sock = connect()
            senders.append((sock, kinds[number % len(kinds)]()))
            sock.sendall(next(senders[-1][1]))
        trickler.start()
        time.sleep(SETTLE_SECONDS)
        yield
    finally:
        stop.set()
        if trickler.is_alive():
            trickler.join(timeout=STOP_WITHIN_SECONDS)
        for sock, _ in senders:
            sock.close()


def plain_connection(address: tuple[str, int]) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection(address, timeout=5)


def tls_connection(nginx: Nginx) -> Callable[[], socket.socket]:
    """A connection to nginx's HTTPS port, the TLS handshake done, as a browser's would be."""
    context = ssl.create_default_context(cafile=nginx.certificate)
    port = int(nginx.https_url.rsplit(":", 1)[1])
    return lambda: context.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1"
    )


# --- Signing in and looking up through nginx ------------------------------------------------


def logged_in_session(nginx: Nginx) -> requests.Session:
    session = nginx.session()
    answer = post_login(session, nginx.https_url, USERNAME, PASSWORD, timeout=LOGIN_TIMEOUT_SECONDS)
    assert answer.url == f"{nginx.https_url}/customers/", f"the login failed ({answer.status_code})"
    return session


def audit_client_ips(database_path: str) -> list[str]:
    with closing(sqlite3.connect(database_path)) as database:
        return [ip for (ip,) in database.execute("SELECT client_ip FROM customers_auditevent ORDER BY id")]


# --- The tests ------------------------------------------------------------------------------


def timed_login_page(nginx: Nginx) -> tuple[int, float]:
    """The login page's status through nginx, and the seconds it took to come."""
    started = time.perf_counter()
    answer = nginx.session().get(f"{nginx.https_url}/accounts/login/", timeout=ANSWER_WITHIN_SECONDS)
    return answer.status_code, time.perf_counter() - started


def test_login_page_answers_within_a_second_while_slow_clients_hold_connections(nginx):
    with slow_clients(tls_connection(nginx)):
        status, seconds = timed_login_page(nginx)

    assert status == 200
    assert seconds < ANSWER_WITHIN_SECONDS


def test_login_page_answers_within_a_second_while_clients_send_one_byte_before_any_tls(nginx):
    """The issue's own reproduction: connections that send a single byte and nothing more."""
    port = int(nginx.https_url.rsplit(":", 1)[1])
    with slow_clients(plain_connection(("127.0.0.1", port)), kinds=(one_byte,)):
        status, seconds = timed_login_page(nginx)

    assert status == 200
    assert seconds < ANSWER_WITHIN_SECONDS


def test_staff_sign_in_and_look_up_a_customer_while_slow_clients_hold_connections(nginx):
    with slow_clients(tls_connection(nginx)):
        session = logged_in_session(nginx)
        answer = session.get(
            f"{nginx.https_url}/customers/{DemoId.INDIVIDUAL_APPROVED}/", timeout=LOGIN_TIMEOUT_SECONDS
        )

    assert answer.status_code == 200
    assert escape(DEMO_CUSTOMERS[DemoId.INDIVIDUAL_APPROVED]["email"]) in answer.text


def test_answers_through_nginx_name_neither_gunicorn_nor_a_version(nginx):
    answer = nginx.session().get(f"{nginx.https_url}/accounts/login/", timeout=LOGIN_TIMEOUT_SECONDS)

    assert answer.headers.get("Server") == "nginx"


def test_gunicorn_with_the_repository_configuration_sends_no_server_header(gunicorn_address):
    answer = bare_get(gunicorn_address)

    assert answer.status_code == 200
    assert "Server" not in answer.headers


def test_audit_log_records_the_address_nginx_saw_not_a_forged_forwarded_for(nginx, server_env):
    session = logged_in_session(nginx)
    answer = session.get(
        f"{nginx.https_url}/customers/{DemoId.INDIVIDUAL_APPROVED}/",
        headers={"X-Forwarded-For": FORGED_CLIENT_IP},
        timeout=LOGIN_TIMEOUT_SECONDS,
    )

    assert answer.status_code == 200
    assert audit_client_ips(server_env["DASHBOARD_DB_PATH"])[-1] == "127.0.0.1"


def test_nginx_keeps_no_access_log_of_what_was_typed_into_an_address(nginx):
    session = nginx.session()
    session.get(f"{nginx.https_url}/customers/?customer_id={TYPED_TEXT}", timeout=LOGIN_TIMEOUT_SECONDS)
    # One worker: by the time this answer comes, the line of the request before it is written.
    session.get(f"{nginx.https_url}/accounts/login/", timeout=LOGIN_TIMEOUT_SECONDS)

    assert TYPED_TEXT not in nginx.access_log.read_text()


def test_plain_http_redirects_to_https(nginx):
    answer = requests.get(
        f"{nginx.http_url}/customers/", allow_redirects=False, timeout=LOGIN_TIMEOUT_SECONDS
    )

    assert answer.status_code == 301
    assert answer.headers["Location"] == "https://127.0.0.1/customers/"


def test_nginx_answers_on_ipv6_as_on_ipv4(nginx):
    if nginx.https_ipv6_url is None:
        pytest.skip("no IPv6 on this machine's loopback: the site's IPv6 lines were commented out")

    page = nginx.session().get(f"{nginx.https_ipv6_url}/accounts/login/", timeout=LOGIN_TIMEOUT_SECONDS)
    redirect = requests.get(
        f"{nginx.http_ipv6_url}/customers/", allow_redirects=False, timeout=LOGIN_TIMEOUT_SECONDS
    )

    assert page.status_code == 200
    assert "<h1>Log in</h1>" in page.text
    assert redirect.status_code == 301


def test_the_site_with_its_ipv6_lines_commented_out_is_still_a_valid_site(certificate):
    """What an operator on a host without IPv6 does, as the file says; nginx -t checks the result."""
    placeholders = {
        "@GUNICORN_ADDRESS@": "127.0.0.1:8000",
        "@HTTP_LISTEN@": f"127.0.0.1:{free_loopback_port()}",
        "@HTTPS_LISTEN@": f"127.0.0.1:{free_loopback_port()}",
        "@SERVER_NAME@": "127.0.0.1",
        "@TLS_CERTIFICATE@": str(certificate[0]),
        "@TLS_CERTIFICATE_KEY@": str(certificate[1]),
    }
    site = site_for_this_machine(placeholders, ipv6=False)
    prefix = nginx_prefix()
    try:
        (prefix / "kyc-desk.conf").write_text(site)
        checked = run_captured([*nginx_command(prefix), "-t"], env=None, timeout=STOP_WITHIN_SECONDS)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)

    assert checked.returncode == 0, checked.stderr
    assert not re.search(r"^\s*listen \[", site, flags=re.MULTILINE)


def test_without_nginx_slow_clients_take_every_gunicorn_thread(server_env, work_dir):
    """Why nginx is in front: gunicorn alone gives each slow client a thread until none is left.

    One worker, so that every slow client lands on it: with the configuration's two, the kernel
    may hand a whole burst of connections to one worker and leave the other free for a while.
    """
    with (
        gunicorn(server_env, work_dir / "gunicorn-one-worker.log", "--workers=1") as address,
        slow_clients(plain_connection(address)),
        pytest.raises(requests.Timeout),
    ):
        bare_get(address, timeout=ANSWER_WITHIN_SECONDS)
