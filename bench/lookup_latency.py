"""Measure what one customer lookup costs the dashboard, end to end over real HTTP.

Starts the local Align stand-in in this process, then times N lookups of each demo customer
through Django's full request path (middleware, auth, the client's HTTP call, parsing, template
rendering), as a full page and as an htmx fragment. Prints percentiles; asserts nothing.

Run from the project root:  .venv/bin/python bench/lookup_latency.py [--rounds 50]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAND_IN_KEY = "bench-stand-in-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="lookups per demo customer and mode")
    rounds = parser.parse_args().rounds

    from customers.stub import serving

    with serving(api_key=STAND_IN_KEY) as stand_in:
        run(stand_in, rounds)
    print("Measured in one process on this machine: Django test client -> stand-in on loopback.")


def run(stand_in, rounds: int) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-only-secret-key-bench-only-secret-key",
        DJANGO_ALLOWED_HOSTS="testserver",
        DASHBOARD_DB_PATH=":memory:",
        # Debug off, pages link the hashed copies that collectstatic makes, here in a throwaway folder.
        DASHBOARD_STATIC_ROOT=tempfile.mkdtemp(prefix="kyc-desk-bench-static-"),
        DJANGO_HTTPS_ONLY="0",
        DASHBOARD_REQUIRE_2FA="0",
        ALIGN_API_BASE_URL=stand_in.base_url,
        ALIGN_API_KEY=STAND_IN_KEY,
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from customers.stub import DemoId

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    user = get_user_model().objects.create_superuser("bench", password="bench-password-not-used")
    client = Client()
    client.force_login(user)

    for mode, headers in (("full page", {}), ("htmx fragment", {"HX-Request": "true"})):
        timings_ms = []
        for _ in range(rounds):
            for demo_id in DemoId:
                started = time.perf_counter()
                response = client.get(f"/customers/{demo_id}/", headers=headers)
                timings_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
        timings_ms.sort()
        p50 = statistics.median(timings_ms)
        p95 = timings_ms[int(len(timings_ms) * 0.95) - 1]
        worst = timings_ms[-1]
        print(f"{mode:14} n={len(timings_ms):4}  p50={p50:6.2f} ms  p95={p95:6.2f} ms  max={worst:6.2f} ms")


if __name__ == "__main__":
    main()
