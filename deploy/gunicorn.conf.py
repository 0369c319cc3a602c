"""gunicorn's settings for KYC Desk, behind nginx (deploy/nginx-site.conf), as README's "Deploying" runs it.

    .venv/bin/gunicorn -c deploy/gunicorn.conf.py

Loopback only: a gunicorn thread waits without a time limit for a client that sends slowly, so
clients must reach gunicorn only through nginx, which reads each request whole first.
"""

from gunicorn.http import wsgi as gunicorn_wsgi

wsgi_app = "dashboard.wsgi"
bind = ["127.0.0.1:8000"]
# Two processes of eight threads: lookups mostly wait for Align, and SQLite takes one writer at a
# time. tests/test_load.py measures this shape.
worker_class = "gthread"
workers = 2
threads = 8
# A worker silent this long is restarted; a lookup itself is bounded by ALIGN_API_TIMEOUT.
timeout = 30
graceful_timeout = 10
# Only nginx connects, with one connection per request.
keepalive = 2
# One access line per request on standard output, with the path, query and Referer redacted as
# Django's own log lines are; nginx keeps no access log of its own (deploy/nginx-site.conf).
accesslog = "-"
logger_class = "dashboard.gunicorn_logging.RedactingLogger"


class ResponseWithoutServerHeader(gunicorn_wsgi.Response):
    """gunicorn's answer without `Server: gunicorn`, which tells a scanner what runs here.

    gunicorn has no setting for this header. nginx drops it anyway; this is for anyone who
    reaches gunicorn without nginx.
    """

    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.lower().startswith("server:")]


gunicorn_wsgi.Response = ResponseWithoutServerHeader
