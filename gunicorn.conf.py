"""gunicorn's settings for KYC Desk, behind nginx (deploy/nginx-site.conf), as `make serve` runs it.

    .venv/bin/gunicorn -c gunicorn.conf.py    # what `make serve` runs once the database is set up

It runs one worker per core this process may use, of 8 threads each, and binds
${BIND:-127.0.0.1}:${PORT:-8000}. Loopback by default: a gunicorn thread waits without a
time limit for a client that sends slowly, so clients must reach gunicorn only through nginx,
which reads each request whole first. It writes no pid file and opens no control socket, so
several instances run side by side on one host, each on its own PORT.

At the project's root because gunicorn reads ./gunicorn.conf.py by itself when started here.
"""

import os

from gunicorn.http import wsgi as gunicorn_wsgi

wsgi_app = "dashboard.wsgi"
bind = [f"{os.environ.get('BIND') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"]


def whole_number(name: str, default: int) -> int:
    """A count from the environment; a bad one stops gunicorn with a line naming the variable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number, 1 or more; got {raw!r}.")
    return int(raw)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset narrows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS has no affinity: every core


# One process per core, because one process runs Python on one core at a time (its interpreter
# lock), and eight threads in each, because lookups mostly wait for Align: on the 2-core machine
# `make bench` measured, one process was clearly slower and two, three or four did the same
# (bench/README.md, "Worker shape"). With or without Redis: what every worker must see (a bulk
# lookup's rows, the webhook rate limit) is in the shared cache, Redis or the database
# (dashboard/ops/shared_cache.py). WEB_CONCURRENCY (gunicorn's own name for it) and
# GUNICORN_THREADS change the shape; so does GUNICORN_CMD_ARGS="--workers N --threads M", over both.
worker_class = "gthread"
workers = whole_number("WEB_CONCURRENCY", usable_cores())
threads = whole_number("GUNICORN_THREADS", 8)
# A worker silent this long is restarted; a lookup itself is bounded by ALIGN_API_TIMEOUT.
timeout = 30
graceful_timeout = 10
# Only nginx connects, with one connection per request.
keepalive = 2
# Nothing at a fixed path, so a second instance never takes over or removes the first one's:
# no pid file (gunicorn's default), and no control socket (gunicorn's default is one per user).
pidfile = None
control_socket_disable = True
# One access line per request on standard output, with the path, query and Referer redacted as
# Django's own log lines are; nginx keeps no access log of its own (deploy/nginx-site.conf).
accesslog = "-"
logger_class = "dashboard.ops.gunicorn_logging.RedactingLogger"


class ResponseWithoutServerHeader(gunicorn_wsgi.Response):
    """gunicorn's answer without `Server: gunicorn`, which tells a scanner what runs here.

    gunicorn has no setting for this header. nginx drops it anyway; this is for anyone who
    reaches gunicorn without nginx.
    """

    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.lower().startswith("server:")]


gunicorn_wsgi.Response = ResponseWithoutServerHeader


# --- Server hooks ------------------------------------------------------------------------------
# Prometheus multiprocess metrics (docs/operations.md, "Health, readiness and metrics"): gunicorn finds the
# hook by its name; it marks a stopped worker's metric files dead.
from dashboard.ops.metrics import child_exit  # noqa: E402, F401
