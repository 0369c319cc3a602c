"""Measure whether a lookup and the audit admin stay as fast while the audit trail grows.

Starts the local Align stand-in in this process, then for each size of history (0, 100,000 and
1,000,000 lookups of the benchmark user by default) bulk-inserts the benchmark user's audit rows
(and half as many again for nine colleagues), spread over the past year, and times through
Django's full request path: lookups of every demo customer as full pages and htmx fragments, the
Copy link beacon, and the audit admin's list, customer search and filters. Prints medians and
percentiles; asserts nothing.

SQLite in a temporary file by default. With DATABASE_URL set, PostgreSQL: point it at a scratch
database with no audit events (the benchmark refuses any other) and it deletes its rows at the end.

Run from the project root:  .venv/bin/python bench/audit_growth.py [--sizes 0,100000] [--rounds 20]
"""

import argparse
import math
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INSERT_BATCH = 10_000
COLLEAGUES = 9
CUSTOMER_POOL = 20_000
ADMIN_ROUNDS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="0,100000,1000000", help="the benchmark user's audit rows, comma-separated"
    )
    parser.add_argument("--rounds", type=int, default=20, help="lookups per demo customer and mode, per size")
    arguments = parser.parse_args()
    sizes = sorted(int(size) for size in arguments.sizes.split(","))

    from bench.in_process import django_beside_a_stand_in

    with django_beside_a_stand_in():
        run(sizes, arguments.rounds)


def run(sizes: list[int], rounds: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from bench.in_process import prepare_database
    from customers.models import AuditEvent

    prepare_database()
    if AuditEvent.objects.exists():
        sys.exit("The database already holds audit events: point DATABASE_URL at a scratch database.")
    users = get_user_model().objects
    bench_user = users.create_superuser(f"bench-{uuid.uuid4().hex[:8]}", password="bench-password-not-used")
    colleagues = [users.create_user(f"colleague-{uuid.uuid4().hex[:8]}") for _ in range(COLLEAGUES)]
    client = Client()
    client.force_login(bench_user)
    print(f"Database: {connection.vendor}; {rounds} rounds of every demo customer per mode and size")
    try:
        inserted = 0
        for size in sizes:
            started = time.perf_counter()
            grow_history(bench_user, colleagues, size - inserted)
            inserted = size
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"ANALYZE {AuditEvent._meta.db_table}")
            total = AuditEvent.objects.count()
            print(
                f"\n== {size:,} audit rows of the benchmark user ({total:,} in all; "
                f"inserted in {time.perf_counter() - started:.0f} s)"
            )
            measure(client, rounds)
            measure_queries(bench_user, rounds)
        print_plans(bench_user)
    finally:
        AuditEvent.objects.filter(user__in=[bench_user, *colleagues]).delete()
        users.filter(pk__in=[bench_user.pk, *(colleague.pk for colleague in colleagues)]).delete()


def grow_history(bench_user, colleagues, rows: int) -> None:
    """Add `rows` past lookups (one in fifty a link copy) for the user, and half as many for colleagues.

    Times are spread over the past year, oldest first, so the admin's month filter and ordering
    meet the shape of a real trail. occurred_at is auto_now_add, so that is switched off meanwhile.
    """
    from django.utils import timezone

    from customers.models import AuditEvent

    if rows <= 0:
        return
    customers = [uuid.uuid4() for _ in range(CUSTOMER_POOL)]
    outcomes = ["found"] * 8 + ["not_found", "timeout"]
    statuses = ["approved", "pending", "rejected", ""]
    randomizer = random.Random(rows)  # noqa: S311 - made-up history, repeatable
    colleague_rows = rows // 2
    total = rows + colleague_rows
    now = timezone.now()
    occurred_at = AuditEvent._meta.get_field("occurred_at")
    occurred_at.auto_now_add = False
    try:
        for batch_start in range(0, total, INSERT_BATCH):
            batch = []
            for number in range(batch_start, min(total, batch_start + INSERT_BATCH)):
                user = bench_user if randomizer.random() < rows / total else randomizer.choice(colleagues)
                copied = randomizer.random() < 0.02
                outcome = "copied" if copied else randomizer.choice(outcomes)
                batch.append(
                    AuditEvent(
                        occurred_at=now - timedelta(days=365) * (1 - number / total) - timedelta(minutes=5),
                        user=user,
                        action="link_copied" if copied else "lookup",
                        customer_id=randomizer.choice(customers),
                        outcome=outcome,
                        kyc_status=randomizer.choice(statuses) if outcome == "found" else "",
                        client_ip="198.51.100.7",
                        request_id=uuid.uuid4().hex[:12],
                    )
                )
            AuditEvent.objects.bulk_create(batch)
    finally:
        occurred_at.auto_now_add = True


def measure(client, rounds: int) -> None:
    from customers.align.standin.demo import DemoId
    from customers.models import AuditEvent

    for mode, headers in (("full page", {}), ("htmx fragment", {"HX-Request": "true"})):
        timings = [
            timed(client.get, f"/customers/{demo_id}/", headers=headers)
            for _ in range(rounds)
            for demo_id in DemoId
        ]
        print(summary(f"lookup, {mode}", timings))
    beacon = [
        timed(client.post, f"/customers/{DemoId.INDIVIDUAL_APPROVED}/link-copied/") for _ in range(rounds * 5)
    ]
    print(summary("Copy link beacon", beacon))

    some_event = AuditEvent.objects.order_by("-id").values("customer_id", "user_id", "occurred_at").first()
    changelist = "/admin/customers/auditevent/"
    admin_pages = {
        "admin list": {},
        "admin search, whole ID": {"q": str(some_event["customer_id"])},
        "admin search, first 8": {"q": str(some_event["customer_id"])[:8]},
        "admin filter, outcome": {"outcome__exact": "timeout"},
        "admin filter, user": {"user__id__exact": some_event["user_id"]},
        "admin filter, month": {"month": f"{some_event['occurred_at']:%Y-%m}"},
    }
    if AuditEvent.objects.count() > 50 * 100:
        admin_pages["admin list, page 50"] = {"p": 49}
    for name, params in admin_pages.items():
        print(summary(name, [timed(client.get, changelist, params) for _ in range(ADMIN_ROUNDS)]))


def measure_queries(bench_user, rounds: int) -> None:
    """The audit reads a lookup and a copy make, alone: the part of a request that could grow."""
    from types import SimpleNamespace

    from customers.align.standin.demo import DemoId
    from customers.services import audit

    copier = SimpleNamespace(user=bench_user, session={})
    reads = {
        "recent_lookups() alone": lambda: audit.recent_lookups(bench_user),
        "link_copies() alone": lambda: audit.link_copies(customer_id=DemoId.INDIVIDUAL_APPROVED),
        "copy check alone": lambda: audit._shown_lately(copier, DemoId.INDIVIDUAL_APPROVED),
    }
    for name, read in reads.items():
        timings = []
        for _ in range(rounds * 10):
            started = time.perf_counter()
            read()
            timings.append((time.perf_counter() - started) * 1000)
        print(summary(name, timings))


def print_plans(bench_user) -> None:
    """How the database answers those reads at the largest size: each should name an index."""
    from types import SimpleNamespace

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.align.standin.demo import DemoId
    from customers.services import audit

    explain = "EXPLAIN QUERY PLAN" if connection.vendor == "sqlite" else "EXPLAIN"
    with CaptureQueriesContext(connection) as queries:
        audit.recent_lookups(bench_user)
        audit.link_copies(customer_id=DemoId.INDIVIDUAL_APPROVED)
        audit._shown_lately(SimpleNamespace(user=bench_user, session={}), DemoId.INDIVIDUAL_APPROVED)
    print("\nQuery plans at the largest size:")
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            cursor.execute(f"{explain} {query['sql']}")
            print("  " + query["sql"][:100] + " ...")
            for row in cursor.fetchall():
                print("      " + str(row[-1]))


def timed(call, *args, **kwargs) -> float:
    started = time.perf_counter()
    response = call(*args, **kwargs)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (args, response.status_code)
    return elapsed_ms


def summary(name: str, timings_ms: list[float]) -> str:
    timings_ms = sorted(timings_ms)
    p50 = statistics.median(timings_ms)
    p95 = timings_ms[math.ceil(len(timings_ms) * 0.95) - 1]
    worst = timings_ms[-1]
    return f"  {name:24} n={len(timings_ms):4}  p50={p50:7.2f} ms  p95={p95:7.2f} ms  max={worst:7.2f} ms"


if __name__ == "__main__":
    main()
