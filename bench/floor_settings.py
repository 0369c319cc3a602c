"""The production settings with one route more, Django's floor (bench/floor.py): `make bench` only.

serve_bench.py starts gunicorn with `DJANGO_SETTINGS_MODULE=bench.floor_settings`, so the floor
runs in the same settings, middleware, gunicorn.conf.py and worker processes as the dashboard it
is measured beside. Nothing else names this module: `make serve` and dashboard/wsgi.py use
dashboard.settings, whose URLs have no floor.
"""

import os

from dashboard.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor"
# The folder where serve_bench.py puts the dashboard's own htmx fragment of each customer,
# <customer ID>.html, captured once before the first floor lookup. Read here because this module
# is the bench's own settings; dashboard/settings.py reads no variable of the bench.
BENCH_FLOOR_FRAGMENTS = os.environ.get("BENCH_FLOOR_FRAGMENTS", "")
