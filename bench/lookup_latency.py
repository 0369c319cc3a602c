"""Measure what one customer lookup costs the dashboard, end to end over real HTTP.

Starts the local Align stand-in in this process, then times N lookups of each demo customer
through Django's full request path (middleware, auth, the client's HTTP call, parsing, template
rendering), as a full page and as an htmx fragment. Prints percentiles; asserts nothing.

Run from the project root:  .venv/bin/python bench/lookup_latency.py [--rounds 50]
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="lookups per demo customer and mode")
    rounds = parser.parse_args().rounds

    from bench.in_process import STAND_IN_KEY, set_up_django
    from customers.align.standin.server import serving

    with tempfile.TemporaryDirectory() as scratch, serving(api_key=STAND_IN_KEY) as stand_in:
        static_root = Path(scratch) / "static"
        set_up_django(stand_in, database_path=":memory:", static_root=static_root, silence_up_to=logging.INFO)
        run(rounds)
    print("Measured in one process on this machine: Django test client -> stand-in on loopback.")


def run(rounds: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.in_process import prepare_database
    from customers.align.standin.demo import DemoId

    prepare_database()
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
