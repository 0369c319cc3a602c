"""What one htmx lookup costs in CPU and queries, and where the time goes: a profile to cut from.

Starts the local Align stand-in in this process, signs a member of Compliance staff in (password
and authenticator app, as at work), and looks the demo customers up in turn as htmx fragments
through Django's whole request path: after a warm-up, the process's CPU time per lookup (the
stand-in's own included; the least of five rounds), the queries of one lookup, and the size of
one fragment. With --profile, cProfile over the timed lookups, its top functions by own time and by
cumulative time. Asserts nothing.

Run from the project root:  .venv/bin/python bench/lookup_profile.py [--lookups 550] [--profile]
"""

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# CPU time only grows when other work shares the cores, so a figure is the least of five rounds.
ROUNDS = 5
WARM_UP = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=550, help="timed htmx lookups, in 5 rounds")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    arguments = parser.parse_args()

    from bench.in_process import django_beside_a_stand_in

    with django_beside_a_stand_in():
        run(arguments.lookups, arguments.profile)


def run(lookups: int, profile: bool) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.in_process import prepare_database, verified_staff_client
    from customers.align.standin.demo import DemoId

    prepare_database()
    client, _ = verified_staff_client()
    urls = [f"/customers/{demo_id}/" for demo_id in DemoId]

    def look_up(count: int) -> None:
        for number in range(count):
            response = client.get(urls[number % len(urls)], headers={"HX-Request": "true"})
            assert response.status_code == 200, response.status_code

    look_up(WARM_UP)
    profiler = cProfile.Profile() if profile else None
    per_round = max(1, lookups // ROUNDS)
    means = []
    for _ in range(ROUNDS):
        if profiler:
            profiler.enable()
        started = time.process_time()
        look_up(per_round)
        means.append((time.process_time() - started) * 1000 / per_round)
        if profiler:
            profiler.disable()
    with CaptureQueriesContext(connection) as queries:
        fragment = client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/", headers={"HX-Request": "true"})
    rounds = ", ".join(f"{mean:.2f}" for mean in means)
    print(
        f"htmx lookups of the {len(urls)} demo customers, {per_round * ROUNDS} timed: "
        f"{min(means):.2f} ms of CPU per lookup (rounds: {rounds}); "
        f"{len(queries)} queries; fragment {len(fragment.content):,} bytes"
    )
    if profiler:
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(25)
            print(text.getvalue())


if __name__ == "__main__":
    main()
