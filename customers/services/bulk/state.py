"""A bulk lookup's state in the shared cache, where any worker of any instance can answer the page's polls.

The database holds counts and the audit rows (IDs and outcomes), never a name; rows live only here,
with the progress: how many rows are done, their counts, and which customers are at Align now and
since when, so the poll can name a customer Align is slow on.

The shared cache is Redis with REDIS_URL, a table of the database without it
(dashboard/ops/shared_cache.py). When it can't be reached (Redis down, the database unwritable),
every read and write here raises ResultsUnavailable, for the pages to say so instead of failing.
"""

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from customers.models import AuditEvent
from customers.services.bulk.paste import RejectedEntry, reported_counts
from customers.services.bulk.rows import BatchRow, summary_line
from dashboard.ops.shared_cache import UNAVAILABLE_ERRORS, shared_cache

logger = logging.getLogger(__name__)

# Kept this long after the last look (each page view and poll moves it on): "kept while watched".
RESULTS_TTL_SECONDS = 30 * 60
RUNNING = "running"
FINISHED = "finished"
# A customer at Align this long is named in the progress line; a shorter wait is not, or the line
# of every batch would flicker with customers Align answers in a moment.
SLOW_AFTER_SECONDS = 3


class ResultsUnavailable(Exception):
    """The cache that keeps bulk lookups can't be reached: no batch can start, nor be shown, now."""


@contextlib.contextmanager
def cache_reachable() -> Iterator[None]:
    """Turns the cache failing to answer into ResultsUnavailable (also as a decorator), and logs it."""
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        logger.warning("Bulk lookup: the cache can't be reached (%s)", type(error).__name__)
        raise ResultsUnavailable from error


def cache_key(batch_id: uuid.UUID | str, *parts: object) -> str:
    return ":".join(["kycdesk:bulk", str(batch_id), *(str(part) for part in parts)])


@dataclass(frozen=True)
class InFlight:
    """A customer of the batch sent to Align and not answered yet; `sent_at` is wall-clock time
    (time.time()), so that whichever instance answers the poll can count the seconds from it."""

    position: int
    customer_id: str
    sent_at: float


@dataclass(frozen=True)
class WaitingOnAlign:
    """The customer Align has kept longest, past SLOW_AFTER_SECONDS, and how many more it keeps so."""

    customer_id: str
    seconds: int
    others: int


@dataclass(frozen=True)
class BatchState:
    """A batch as the cache holds it: who owns it, its progress, and what was read from the paste."""

    batch_id: str
    owner_id: int
    total: int
    pool_size: int
    started_at: datetime
    with_email: bool
    entries: int
    duplicates: int
    rejected: tuple[RejectedEntry, ...]
    rejected_count: int
    status: str = RUNNING
    finished_at: datetime | None = None
    ends_by: float = math.inf
    done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    in_flight: tuple[InFlight, ...] = ()

    @property
    def stalled(self) -> bool:
        """Still marked running long after its deadline: the process running it stopped."""
        return not self.finished and time.time() > self.ends_by

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def waiting_on_align(self) -> WaitingOnAlign | None:
        """Whom Align is slow on now, for the progress line; None while it answers in good time."""
        now = time.time()
        slow = sorted(
            (entry for entry in self.in_flight if now - entry.sent_at >= SLOW_AFTER_SECONDS),
            key=lambda entry: entry.sent_at,
        )
        if not slow:
            return None
        return WaitingOnAlign(slow[0].customer_id, int(now - slow[0].sent_at), others=len(slow) - 1)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def summary(self) -> str:
        return summary_line(self.counts)

    @property
    def read_as(self) -> str:
        return reported_counts(customers=self.total, duplicates=self.duplicates, rejected=self.rejected_count)

    @property
    def took_seconds(self) -> int | None:
        if self.finished_at is None:
            return None
        return max(round((self.finished_at - self.started_at).total_seconds()), 0)


@cache_reachable()
def read_batch(batch_id: uuid.UUID) -> BatchState | None:
    """The batch's state, or None when it has expired (or never existed)."""
    found = shared_cache.get_many([cache_key(batch_id), cache_key(batch_id, "progress")])
    meta = found.get(cache_key(batch_id))
    if meta is None:
        return None
    progress = found.get(cache_key(batch_id, "progress")) or {"done": 0, "counts": {}}
    return BatchState(
        **meta
        | {
            "rejected": tuple(RejectedEntry(**entry) for entry in meta["rejected"]),
            "done": progress["done"],
            "counts": progress["counts"],
            # Written by an instance that does not keep them yet (a rolling deploy): none to show.
            "in_flight": tuple(InFlight(**entry) for entry in progress.get("in_flight", ())),
        }
    )


@cache_reachable()
def rows_after(state: BatchState, after: int = 0) -> list[BatchRow]:
    """The rows completed after the first `after`, in the order they completed.

    Rows are read up to the first one missing, so a poll never skips a row: the next poll, which
    starts after the rows it was given, picks the rest up.
    """
    if state.finished:
        stored = shared_cache.get(cache_key(state.batch_id, "rows")) or []
        return [BatchRow.from_cache(row) for row in stored[after:]]
    keys = [cache_key(state.batch_id, "row", index) for index in range(max(after, 0), state.done)]
    found = shared_cache.get_many(keys)
    rows = []
    for key in keys:
        if key not in found:
            break
        rows.append(BatchRow.from_cache(found[key]))
    return rows


@cache_reachable()
def keep_watching(state: BatchState) -> None:
    """Someone is looking: keep the batch for another RESULTS_TTL_SECONDS, and keep it running."""
    batch_id = state.batch_id
    shared_cache.set(cache_key(batch_id, "watched"), time.time(), RESULTS_TTL_SECONDS)
    for key in (cache_key(batch_id), cache_key(batch_id, "progress"), cache_key(batch_id, "rows")):
        shared_cache.touch(key, RESULTS_TTL_SECONDS)


def rerun_list(batch_id: uuid.UUID) -> list[str]:
    """The customers an expired batch sent to Align, in order, from its audit rows (IDs only)."""
    lookups = AuditEvent.objects.filter(batch_id=batch_id, action=AuditEvent.Action.LOOKUP).order_by("id")
    return [str(customer_id) for customer_id in dict.fromkeys(lookups.values_list("customer_id", flat=True))]
