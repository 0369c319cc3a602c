"""gunicorn's settings for KYC Desk, behind nginx (deploy/nginx-site.conf), as `make serve` runs it.

    .venv/bin/gunicorn -c gunicorn.conf.py    # what `make serve` runs after migrate and collectstatic

It binds ${BIND:-127.0.0.1}:${PORT:-8000}. Loopback by default: a gunicorn thread waits without a
time limit for a client that sends slowly, so clients must reach gunicorn only through nginx,
which reads each request whole first. It writes no pid file and opens no control socket, so
several instances run side by side on one host, each on its own PORT.

At the project's root because gunicorn reads ./gunicorn.conf.py by itself when started here.
"""

import os

from gunicorn.http import wsgi as gunicorn_wsgi

wsgi_app = "dashboard.wsgi"
bind = [f"{os.environ.get('BIND') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"]
# With Redis (REDIS_URL), two processes of eight threads: one process per core of the 2-core
# machine `make bench` measured (one process could use one core only; three or four did no
# better), and threads because lookups mostly wait for Align. More cores: one worker each,
# `GUNICORN_CMD_ARGS="--workers N"` (docs/operations.md, "Deploying"; bench/README.md, "Worker shape").
# Without Redis the cache is each process's own memory, and a bulk lookup's rows must be read
# by whichever worker answers the page's next poll: one process of sixteen threads.
worker_class = "gthread"
workers = 2 if os.environ.get("REDIS_URL") else 1
threads = 8 if os.environ.get("REDIS_URL") else 16
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
