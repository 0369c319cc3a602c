"""Run pytest against a throwaway PostgreSQL and Redis: `make test`'s second pass.

    python tests/support/services.py [pytest arguments...]

Both servers start on free loopback ports, with their files in one temporary directory, and
are stopped and removed afterwards, whatever pytest did. Nothing is kept between runs, so
nothing needs a password: PostgreSQL trusts connections from this machine only. PostgreSQL
refuses to run as root, so as root it runs as Debian's `postgres` system user.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
DATABASE_ROLE = "kyc_desk"
DATABASE_NAME = "kyc_desk"
STARTUP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_program(name: str) -> str:
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"PostgreSQL's {name} was not found: install Debian's postgresql package.")
    return found


def as_database_owner(command: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root (PostgreSQL won't run as root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited at startup (status {process.returncode}).")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start listening on port {port} within {STARTUP_TIMEOUT} s.")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # Redis saves nothing on the way out (--save "")
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgresql(workdir: Path) -> Iterator[str]:
    data = workdir / "postgresql"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
        shutil.chown(data, user="postgres")
    subprocess.run(  # noqa: S603  (our own programs and arguments)
        as_database_owner(
            [
                pg_program("initdb"),
                "-D",
                str(data),
                "-U",
                DATABASE_ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    server = subprocess.Popen(  # noqa: S603  (our own programs and arguments)
        as_database_owner(
            [
                pg_program("postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(workdir),
                # A throwaway database: no need to survive a power cut, so no waiting for the disk.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "postgresql.log").open("w"),
    )
    try:
        wait_for_port(port, server, "PostgreSQL")
        subprocess.run(  # noqa: S603  (our own programs and arguments)
            as_database_owner(
                [
                    pg_program("createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    DATABASE_ROLE,
                    DATABASE_NAME,
                ]
            ),
            check=True,
        )
        yield f"postgres://{DATABASE_ROLE}@127.0.0.1:{port}/{DATABASE_NAME}"
    finally:
        # A fast shutdown: connections still open (a test's process killed half-way) are closed,
        # where a plain SIGTERM would wait for them. pg_ctl returns once the server is gone.
        subprocess.run(  # noqa: S603  (our own programs and arguments)
            as_database_owner(
                [pg_program("pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "30"]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stop(server)


def stop_postgresql(workdir: Path) -> None:
    """Stop the server `postgresql(workdir)` started, keeping its files: an outage, for a test."""
    subprocess.run(  # noqa: S603  (our own programs and arguments)
        as_database_owner(
            [pg_program("pg_ctl"), "stop", "-D", str(workdir / "postgresql"), "-m", "fast", "-w", "-t", "30"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_postgresql(workdir: Path, database_url: str) -> None:
    """Start it again on its files and port after `stop_postgresql`; `postgresql` still stops it."""
    port = urlsplit(database_url).port
    subprocess.run(  # noqa: S603  (our own programs and arguments)
        as_database_owner(
            [
                pg_program("pg_ctl"),
                "start",
                "-D",
                str(workdir / "postgresql"),
                "-w",
                "-t",
                str(STARTUP_TIMEOUT),
                "-l",
                str(workdir / "postgresql-restarted.log"),
                "-o",
                f"-p {port} -h 127.0.0.1 -k {workdir}",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def start_redis(workdir: Path, port: int) -> subprocess.Popen:
    """redis-server on this loopback port, keeping nothing on disk, once it listens."""
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server was not found: install Debian's redis-server package.")
    server = subprocess.Popen(  # noqa: S603  (our own programs and arguments)
        [
            program,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, "Redis")
    except BaseException:
        stop(server)
        raise
    return server


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    port = free_port()
    server = start_redis(workdir, port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(server)


def main(pytest_arguments: list[str]) -> int:
    # Stopped from outside (CI cancelling a job), still stop both servers on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="kyc-desk-services-"))
    try:
        with postgresql(workdir) as database_url, redis(workdir) as redis_url:
            print(f"PostgreSQL and Redis for this run: {database_url}, {redis_url}", flush=True)
            environment = os.environ | {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
            pytest = Path(sys.executable).with_name("pytest")
            command = [str(pytest), *pytest_arguments]
            return subprocess.run(command, env=environment).returncode  # noqa: S603  (our own pytest)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
