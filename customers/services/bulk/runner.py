"""Running a bulk lookup: a background thread with a bounded pool, each row an audited lookup.

The batch stops sending customers to Align at its deadline, which scales with its size, or when
nobody has looked at it for NOT_WATCHED_AFTER_SECONDS: leaving the page does not keep Align busy.
When Align rate-limits, every thread of the batch pauses for Retry-After and the row is tried
again, while the deadline allows. Which customers are at Align, and since when, is kept with the
progress, so that the page can say which one Align is slow on. The batch is marked finished in
the shared state last of all, once its end is on record and its place given back: whoever waits
on that state (the page, a test, a benchmark) finds the batch wholly done.
"""

import logging
import math
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection

from customers.align import client
from customers.services import audit, audited_calls
from customers.services.bulk import state
from customers.services.bulk.paste import CustomerList
from customers.services.bulk.rows import (
    NOT_FETCHED_OUT_OF_TIME,
    NOT_FETCHED_UNWATCHED,
    UNEXPECTED_FAILURE,
    BatchRow,
    Category,
    customer_row,
    failure_row,
)
from customers.services.decisions import AUDIT_UNAVAILABLE
from dashboard.ops import metrics
from dashboard.ops.log_context import bind_customer, current_user_id
from dashboard.ops.request_id import current_request_id
from dashboard.ops.shared_cache import shared_cache

logger = logging.getLogger(__name__)


# A running batch that nobody has polled for this long stops sending customers to Align. A
# minute and a half, because Chrome may slow a background tab's timers to once a minute.
NOT_WATCHED_AFTER_SECONDS = 90
WATCH_CHECK_SECONDS = 1.0
# Deadline: enough rounds of the pool at the per-lookup deadline, some slack, and a cap.
DEADLINE_SLACK_SECONDS = 30
MAX_DEADLINE_SECONDS = 15 * 60
# A 429 without Retry-After pauses the batch this long.
DEFAULT_RATE_LIMIT_PAUSE_SECONDS = 5
# How long past its deadline (and one lookup's) a batch may still be writing its last rows.
STALLED_GRACE_SECONDS = 30
# Batches running at once in one process; each holds a pool of threads and database connections.
MAX_RUNNING_BATCHES = 4


def batch_deadline_seconds(customers: int, *, pool_size: int, lookup_timeout: float) -> float:
    """ceil(n / pool) rounds of the per-lookup deadline, plus slack, at most MAX_DEADLINE_SECONDS."""
    rounds = math.ceil(customers / pool_size)
    return min(rounds * lookup_timeout + DEADLINE_SLACK_SECONDS, MAX_DEADLINE_SECONDS)


class TooManyBatches(Exception):
    """MAX_RUNNING_BATCHES batches are running in this process already."""


_slots = threading.BoundedSemaphore(MAX_RUNNING_BATCHES)


def start_batch(actor: audit.Actor, found: CustomerList, *, with_email: bool) -> uuid.UUID:
    """Record the batch, store its first state and start fetching; the batch ID for its page.

    Raises TooManyBatches, audit.AuditUnavailable when the batch cannot be put on record, or
    state.ResultsUnavailable when its state cannot be stored in the cache; in each case nothing is
    fetched. The record comes first, so a batch whose state can't be stored is on record already:
    it ends there, with every customer counted as never sent to Align.
    """
    if not _slots.acquire(blocking=False):
        raise TooManyBatches
    try:
        batch = audit.record_bulk_lookup(
            actor,
            ids_submitted=found.entries,
            ids_valid=len(found.customer_ids),
            duplicates=found.duplicates,
            rejected=found.rejected_count,
        )
        runner = BatchRunner(
            batch_id=batch.pk,
            started_at=batch.started_at,
            actor=actor,
            with_email=with_email,
            found=found,
        )
        try:
            runner.start()
        except state.ResultsUnavailable:
            audit.finish_bulk_lookup(batch.pk, not_fetched=len(found.customer_ids))
            raise
    except BaseException:
        _slots.release()
        raise
    metrics.BULK_LOOKUPS.inc()
    return batch.pk


class BatchRunner:
    """Fetches one batch in a background thread with a bounded pool, writing rows as they end.

    It holds no request: the actor (user, client IP, request ID) was taken from it up front.
    """

    def __init__(
        self,
        *,
        batch_id: uuid.UUID,
        started_at: datetime,
        actor: audit.Actor,
        with_email: bool,
        found: CustomerList,
    ) -> None:
        customer_ids = found.customer_ids
        self.batch_id = str(batch_id)
        self.actor = actor
        self.with_email = with_email
        self.pool_size = min(settings.ALIGN_BULK_CONCURRENCY, len(customer_ids))
        self.deadline_seconds = batch_deadline_seconds(
            len(customer_ids),
            pool_size=settings.ALIGN_BULK_CONCURRENCY,
            lookup_timeout=settings.ALIGN_API_TIMEOUT,
        )
        self._deadline = time.monotonic() + self.deadline_seconds
        self._queue: deque[tuple[int, uuid.UUID]] = deque(enumerate(customer_ids))
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._rows: list[BatchRow] = []
        self._counts: Counter[str] = Counter()
        # By position: the customers sent to Align and not answered yet.
        self._in_flight: dict[int, state.InFlight] = {}
        self._watched_at = time.time()
        self._watch_checked_at = 0.0
        self._thread = threading.Thread(target=self._run, name=f"bulk-{self.batch_id[:8]}", daemon=True)
        self._meta = {
            "batch_id": self.batch_id,
            "owner_id": actor.user.pk,
            "total": len(customer_ids),
            "pool_size": settings.ALIGN_BULK_CONCURRENCY,
            "started_at": started_at,
            "with_email": with_email,
            "entries": found.entries,
            "duplicates": found.duplicates,
            "rejected": [asdict(entry) for entry in found.rejected],
            "rejected_count": found.rejected_count,
            "status": state.RUNNING,
            "finished_at": None,
            # Past this (wall clock, for every instance), a batch still "running" has lost its
            # runner (a restarted worker): the page stops waiting for it.
            "ends_by": time.time()
            + self.deadline_seconds
            + settings.ALIGN_API_TIMEOUT
            + STALLED_GRACE_SECONDS,
        }

    def start(self) -> None:
        """Store the batch's first state, then start fetching; ResultsUnavailable if it can't be stored."""
        with state.cache_reachable():
            shared_cache.set_many(
                {
                    state.cache_key(self.batch_id): self._meta,
                    state.cache_key(self.batch_id, "progress"): {"done": 0, "counts": {}, "in_flight": []},
                    state.cache_key(self.batch_id, "watched"): self._watched_at,
                },
                state.RESULTS_TTL_SECONDS,
            )
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        self._bind_log_context()
        try:
            with ThreadPoolExecutor(self.pool_size, thread_name_prefix=self._thread.name) as pool:
                workers = [pool.submit(self._work) for _ in range(self.pool_size)]
            for worker in workers:
                if worker.exception() is not None:
                    logger.error(
                        "Bulk lookup %s: a worker stopped", self.batch_id, exc_info=worker.exception()
                    )
            audit.finish_bulk_lookup(uuid.UUID(self.batch_id), not_fetched=self._counts[Category.NOT_FETCHED])
        finally:
            logger.info(
                "Bulk lookup %s ended: %d customers, %d not fetched, elapsed_ms=%d",
                self.batch_id,
                len(self._rows),
                self._counts[Category.NOT_FETCHED],
                (time.monotonic() - started) * 1000,
            )
            connection.close()
            _slots.release()
        self._mark_finished()

    def _bind_log_context(self) -> None:
        # A new thread starts with empty context variables: give its log lines the batch's request.
        current_request_id.set(self.actor.request_id or "-")
        current_user_id.set(str(self.actor.user.pk))

    def _work(self) -> None:
        """One thread of the pool: customers one at a time until none is left."""
        self._bind_log_context()
        try:
            while (item := self._next()) is not None:
                position, customer_id = item
                bind_customer(customer_id)
                try:
                    self._look_up(position, customer_id)
                # One customer's failure never fails the batch: whatever went wrong with this
                # row (a bug, a value the cache refused), the rest of the list is still fetched,
                # and the row says something went wrong. The traceback is logged.
                except Exception:
                    logger.exception("Bulk lookup %s: a row failed", self.batch_id)
                    self._record(failure_row(position, customer_id, UNEXPECTED_FAILURE, "error"))
        finally:
            connection.close()

    def _next(self) -> tuple[int, uuid.UUID] | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _look_up(self, position: int, customer_id: uuid.UUID) -> None:
        """An audited lookup, as the single view's, except that a rate limit pauses the batch instead."""
        if not self._wait_for_turn(position, customer_id):
            return
        self._sent(position, customer_id)
        lookup = audited_calls.look_up(
            self.actor, customer_id, batch_id=uuid.UUID(self.batch_id), wait_on_rate_limit=False
        )
        if lookup.answer is not None:
            self._record(customer_row(position, lookup.answer, with_email=self.with_email))
        elif not lookup.recorded:
            self._record(failure_row(position, customer_id, AUDIT_UNAVAILABLE, "audit_unavailable"))
        elif isinstance(lookup.error, client.RateLimited) and self._pause_for(lookup.error):
            with self._lock:
                self._queue.append((position, customer_id))
                self._in_flight.pop(position)
                self._write_progress()
        else:
            outcome = audit.outcome_of_failure(lookup.error)
            self._record(failure_row(position, customer_id, lookup.failure, outcome))

    def _wait_for_turn(self, position: int, customer_id: uuid.UUID) -> bool:
        """Wait out a rate-limit pause; False (the row recorded as not fetched) when it may not go."""
        while True:
            with self._lock:
                pause = self._paused_until - time.monotonic()
                out_of_time = self._paused_until >= self._deadline or time.monotonic() >= self._deadline
            if out_of_time:
                self._record(failure_row(position, customer_id, NOT_FETCHED_OUT_OF_TIME, "not_fetched"))
                return False
            if pause <= 0:
                break
            time.sleep(pause)
        if not self._still_watched():
            self._record(failure_row(position, customer_id, NOT_FETCHED_UNWATCHED, "not_fetched"))
            return False
        return True

    def _pause_for(self, error: client.RateLimited) -> bool:
        """Pause every thread for Align's Retry-After; True when the row can still be tried again."""
        wait = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_PAUSE_SECONDS
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + wait)
            retry = self._paused_until < self._deadline
        logger.info(
            "Bulk lookup %s: Align rate-limits us; pausing %s s (retry=%s)", self.batch_id, wait, retry
        )
        return retry

    def _still_watched(self) -> bool:
        """Whether anyone has looked at the batch lately; read from the cache at most once a second."""
        now = time.monotonic()
        with self._lock:
            if now - self._watch_checked_at >= WATCH_CHECK_SECONDS:
                self._watch_checked_at = now
                watched_key = state.cache_key(self.batch_id, "watched")
                self._watched_at = shared_cache.get(watched_key, self._watched_at)
            return time.time() - self._watched_at <= NOT_WATCHED_AFTER_SECONDS

    def _sent(self, position: int, customer_id: uuid.UUID) -> None:
        """The customer is at Align from now on, until its row is recorded (or it waits its turn again)."""
        with self._lock:
            self._in_flight[position] = state.InFlight(position, str(customer_id), sent_at=time.time())
            self._write_progress()

    def _record(self, row: BatchRow) -> None:
        """Put the row in the cache, then count it: a poll that sees the count finds the row."""
        with self._lock:
            index = len(self._rows)
            row_key = state.cache_key(self.batch_id, "row", index)
            shared_cache.set(row_key, row.to_cache(), state.RESULTS_TTL_SECONDS)
            self._rows.append(row)
            self._counts[row.category] += 1
            if row.needs_resubmission:
                self._counts[Category.NEEDS_RESUBMISSION] += 1
            self._in_flight.pop(row.position, None)
            self._write_progress()

    def _write_progress(self) -> None:
        """The progress as polls read it (state.read_batch); called with the lock held."""
        progress = {
            "done": len(self._rows),
            "counts": dict(self._counts),
            "in_flight": [asdict(entry) for entry in self._in_flight.values()],
        }
        shared_cache.set(state.cache_key(self.batch_id, "progress"), progress, state.RESULTS_TTL_SECONDS)

    def _mark_finished(self) -> None:
        """All rows under one key, the batch marked finished, the per-row keys dropped.

        Every worker has ended, so the rows and counts no longer change.
        """
        rows = [row.to_cache() for row in self._rows]
        self._meta |= {"status": state.FINISHED, "finished_at": datetime.now(UTC)}
        shared_cache.set(state.cache_key(self.batch_id, "rows"), rows, state.RESULTS_TTL_SECONDS)
        shared_cache.set(state.cache_key(self.batch_id), self._meta, state.RESULTS_TTL_SECONDS)
        shared_cache.delete_many([state.cache_key(self.batch_id, "row", index) for index in range(len(rows))])
