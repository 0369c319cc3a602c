"""Measure whether a lookup costs the same however often its customer was looked up before.

A pending customer's open page looks her up again by itself (an automatic refresh a minute
without webhooks), so busy customers collect thousands of lookups, most of them by the staff member
watching. This starts the local Align stand-in in this process, signs a member of Compliance
staff in (password and authenticator app, as at work), and for each size of the customer's history
(a fresh customer, then 1,000 and 10,000 lookups of her by default: nine in ten by the benchmark
user, the rest by colleagues) times htmx lookups of her through Django's whole request path. It
prints the process's CPU time per lookup (the stand-in's own included) and its ratio to the fresh
customer's, and the queries of one lookup. Asserts nothing.

The history is bulk-inserted, marked as the lookups themselves mark it (audit.finish_lookup: every
lookup after the first saw the same state; every card of a user after their first repeats their
last); the first real lookups are checked against that rule before anything is inserted.

SQLite in a temporary file by default. With DATABASE_URL set, PostgreSQL: point it at a scratch
database with no audit events (the benchmark refuses any other) and it deletes its rows at the end.

Run from the project root:  .venv/bin/python bench/customer_growth.py [--sizes 0,1000,10000] [--lookups 500]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLLEAGUES = 3
# CPU time only grows when other work shares the cores, so a figure is the least of five rounds.
ROUNDS = 5
WARM_UP = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="0,1000,10000", help="lookups of the customer before each, comma-separated"
    )
    parser.add_argument("--lookups", type=int, default=500, help="timed htmx lookups per size, in 5 rounds")
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))

    from bench.in_process import django_beside_a_stand_in

    with django_beside_a_stand_in():
        run(sizes, arguments.lookups)


def run(sizes: list[int], lookups: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.in_process import prepare_database, verified_staff_client
    from customers.align.standin.demo import DemoId
    from customers.models import AuditEvent

    prepare_database()
    if AuditEvent.objects.exists():
        sys.exit("The database already holds audit events: point DATABASE_URL at a scratch database.")
    client, bench_user = verified_staff_client()
    colleagues = [
        get_user_model().objects.create_user(f"{bench_user.username}-colleague{n}") for n in range(COLLEAGUES)
    ]
    customer_id = DemoId.FORM_STARTED  # pending: the customer an open page watches
    url = f"/customers/{customer_id}/?refresh=1"
    print(f"Database: {connection.vendor}; {lookups} htmx lookups of one pending customer per size")
    try:
        for other in (DemoId.INDIVIDUAL_APPROVED, DemoId.REJECTED):  # warm up on other customers
            for _ in range(WARM_UP):
                lookup(client, f"/customers/{other}/")
        check_the_marks(client, url, bench_user, customer_id)
        base = None
        for size in sizes:
            grow_history(customer_id, bench_user, colleagues, size)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"ANALYZE {AuditEvent._meta.db_table}")
            cpu_ms = measure(client, url, lookups)
            base = base or cpu_ms
            had = AuditEvent.objects.filter(customer_id=customer_id).count()
            print(
                f"  {size:>7,} lookups before ({had:>6,} after): {cpu_ms:6.2f} ms of CPU per lookup, "
                f"{cpu_ms / base:4.2f} x the fresh customer's; {queries_of(client, url)} queries"
            )
    finally:
        AuditEvent.objects.filter(user__in=[bench_user, *colleagues]).delete()


def check_the_marks(client, url: str, bench_user, customer_id) -> None:
    """The rule grow_history() marks its rows by, checked against real lookups of the customer."""
    from customers.models import AuditEvent

    for _ in range(5):
        lookup(client, url)
    rows = list(AuditEvent.objects.filter(customer_id=customer_id, user=bench_user).order_by("id"))
    marks = [(row.kyc_unchanged, row.repeats_last_card) for row in rows]
    assert marks == [(False, False)] + [(True, True)] * (len(rows) - 1), marks


def grow_history(customer_id, bench_user, colleagues, size: int) -> None:
    """Bring the customer's lookups up to `size`: nine in ten by the benchmark user, the rest by colleagues.

    Marked as audit.finish_lookup would mark them: the same state as the lookup before, so
    kyc_unchanged; and each user's card repeats their last, as the customer is all they look up here.
    """
    from customers.models import AuditEvent

    had = AuditEvent.objects.filter(customer_id=customer_id).count()
    if size <= had:
        return
    seen_before = set(
        AuditEvent.objects.filter(customer_id=customer_id).values_list("user_id", flat=True).distinct()
    )
    rows = []
    for number in range(size - had):
        user = colleagues[number % len(colleagues)] if number % 10 == 9 else bench_user
        rows.append(
            AuditEvent(
                user=user,
                action="lookup",
                customer_id=customer_id,
                outcome="found",
                kyc_status="pending",
                kyc_sub_status="kyc_form_submission_started",
                is_refresh=True,
                automatic=True,
                kyc_unchanged=True,
                repeats_last_card=user.pk in seen_before,
                client_ip="198.51.100.7",
            )
        )
        seen_before.add(user.pk)
    AuditEvent.objects.bulk_create(rows, batch_size=5000)


def measure(client, url: str, lookups: int) -> float:
    """CPU time of this process per lookup, in ms: the least of the rounds' means."""
    per_round = max(1, lookups // ROUNDS)
    means = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(per_round):
            lookup(client, url)
        means.append((time.process_time() - started) * 1000 / per_round)
    return min(means)


def queries_of(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        lookup(client, url)
    return len(queries)


def lookup(client, url: str) -> None:
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.status_code


if __name__ == "__main__":
    main()
