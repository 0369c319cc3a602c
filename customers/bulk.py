"""Bulk lookups: a pasted list of customers, fetched a few at a time, its rows kept in the cache.

A batch is read from the paste (`read_customer_list`), put on record (BulkLookup), and run in a
background thread by a `BatchRunner`: a pool of ALIGN_BULK_CONCURRENCY threads, each looking one
customer up at a time through the same audited path as the single lookup (the audit row first,
then Align). Its rows live only in the cache, under keys of their own, so any instance behind the
load balancer can answer the page's polls; the database holds counts and the audit rows (IDs and
outcomes), never a name. Rows hold only what the table shows (never an address); the e-mail only
for users allowed to export it.

The batch stops sending customers to Align at its deadline, which scales with its size, or when
nobody has looked at it for NOT_WATCHED_AFTER_SECONDS: leaving the page does not keep Align busy.
When Align rate-limits, every thread of the batch pauses for Retry-After and the row is tried
again, while the deadline allows.
"""

import hashlib
import logging
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from customers import audit, client, presentation
from customers.forms import parse_customer_reference
from customers.models import AuditEvent
from customers.presentation import Badge, LookupFailure
from customers.records import Customer, KycStatus, KycSubStatus, RailStatus
from customers.spreadsheets import spreadsheet_safe
from dashboard import metrics
from dashboard.log_context import bind_customer, current_user_id
from dashboard.request_id import current_request_id

logger = logging.getLogger(__name__)

# --- Reading the pasted list ---------------------------------------------------------------------

MAX_CUSTOMERS = 500
# 500 IDs pasted as links are about 50 KB; four times that is not a list of customer IDs.
MAX_PASTE_CHARS = 200_000
SEPARATORS = re.compile(r"[\s,;]+")
REJECTED_SHOWN_CHARS = 60
REJECTED_LISTED = 100

EMPTY_LIST = "Paste at least one customer ID."
PASTE_TOO_LONG = (
    f"The list is too long to read (over {MAX_PASTE_CHARS // 1000} KB). "
    f"Paste at most {MAX_CUSTOMERS} customer IDs."
)
NO_CUSTOMER_IDS = "None of these is a customer ID, so there is nothing to look up."


@dataclass(frozen=True)
class RejectedEntry:
    """An entry that is not a customer ID, as typed (cut short, invisible characters escaped)."""

    text: str
    reason: str


@dataclass(frozen=True)
class CustomerList:
    """What was read from a paste: the distinct customer IDs in order, and what was left out."""

    customer_ids: tuple[uuid.UUID, ...] = ()
    entries: int = 0
    duplicates: int = 0
    rejected: tuple[RejectedEntry, ...] = ()
    rejected_count: int = 0
    problem: str | None = None  # set when nothing may be fetched

    @property
    def can_start(self) -> bool:
        return self.problem is None

    @property
    def read_as(self) -> str:
        return reported_counts(
            customers=len(self.customer_ids), duplicates=self.duplicates, rejected=self.rejected_count
        )

    @property
    def rejected_not_listed(self) -> int:
        return self.rejected_count - len(self.rejected)


def read_customer_list(text: str) -> CustomerList:
    """Read customer IDs separated by newlines, commas, semicolons, tabs or spaces.

    Each entry is read exactly as the single lookup reads its field (parse_customer_reference);
    duplicates after that count once. Nothing is fetched when there is no ID, more than
    MAX_CUSTOMERS, or a paste too long to be a list of IDs.
    """
    if len(text) > MAX_PASTE_CHARS:
        return CustomerList(problem=PASTE_TOO_LONG)
    entries = [entry for entry in SEPARATORS.split(text) if entry]
    if not entries:
        return CustomerList(problem=EMPTY_LIST)
    seen: dict[uuid.UUID, None] = {}
    rejected: list[RejectedEntry] = []
    rejected_count = duplicates = 0
    for entry in entries:
        try:
            customer_id = parse_customer_reference(entry)
        except ValueError as error:
            rejected_count += 1
            if len(rejected) < REJECTED_LISTED:
                rejected.append(RejectedEntry(_shown_as_typed(entry), _rejection_reason(entry, error)))
            continue
        if customer_id in seen:
            duplicates += 1
        seen[customer_id] = None
    found = CustomerList(tuple(seen), len(entries), duplicates, tuple(rejected), rejected_count)
    if not seen:
        return replace(found, problem=NO_CUSTOMER_IDS)
    if len(seen) > MAX_CUSTOMERS:
        return replace(
            found,
            problem=(
                f"That is {len(seen)} customer IDs; one bulk lookup takes at most {MAX_CUSTOMERS}. "
                "Split the list and look each part up on its own."
            ),
        )
    return found


def list_digest(customer_ids: Iterable[uuid.UUID]) -> str:
    """A short digest of the IDs a check read, so the start can tell it got the same list."""
    return hashlib.sha256("\n".join(map(str, customer_ids)).encode()).hexdigest()[:32]


def _shown_as_typed(entry: str) -> str:
    shown = presentation.inert_link_text(entry)
    if len(shown) <= REJECTED_SHOWN_CHARS:
        return shown
    return shown[: REJECTED_SHOWN_CHARS - 1] + "…"


def _rejection_reason(entry: str, error: ValueError) -> str:
    if "@" in entry:
        return "an e-mail address, not a customer ID"
    if "too long" in str(error):
        return "too long to be a customer ID"
    return "not a customer ID"


def reported_counts(*, customers: int, duplicates: int, rejected: int) -> str:
    """ "312 customer IDs, 4 duplicates ignored, 2 not IDs"."""
    parts = [_count(customers, "customer ID", "customer IDs")]
    if duplicates:
        parts.append(_count(duplicates, "duplicate ignored", "duplicates ignored"))
    if rejected:
        parts.append(_count(rejected, "not an ID", "not IDs"))
    return ", ".join(parts)


def _count(number: int, one: str, several: str) -> str:
    return f"{number:,} {one if number == 1 else several}"


# --- Rows: what the table shows of one customer ----------------------------------------------


class Category:
    """Which chip a row counts under; needs_resubmission is a part of pending."""

    APPROVED = "approved"
    PENDING = "pending"
    NEEDS_RESUBMISSION = "needs_resubmission"
    REJECTED = "rejected"
    NOT_STARTED = "not_started"
    UNKNOWN = "unknown"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    NOT_FETCHED = "not_fetched"


# The chips in the order they are offered, with the words of the summary line.
CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    Category.APPROVED: ("Approved", "approved"),
    Category.PENDING: ("Pending", "pending"),
    Category.NEEDS_RESUBMISSION: ("Needs resubmission", "need resubmission"),
    Category.REJECTED: ("Rejected", "rejected"),
    Category.NOT_STARTED: ("No KYC yet", "no KYC yet"),
    Category.UNKNOWN: ("Unknown status", "unknown status"),
    Category.NOT_FOUND: ("Not found", "not found"),
    Category.FAILED: ("Failed", "failed"),
    Category.NOT_FETCHED: ("Not fetched", "not fetched"),
}
# Sorting by status puts what needs someone's attention first, approved customers last.
STATUS_SORT_ORDER = (
    Category.FAILED,
    Category.NOT_FETCHED,
    Category.NOT_FOUND,
    Category.REJECTED,
    Category.NEEDS_RESUBMISSION,
    Category.PENDING,
    Category.UNKNOWN,
    Category.NOT_STARTED,
    Category.APPROVED,
)
RAIL_MARKS = {RailStatus.APPROVED: "✓", RailStatus.PENDING: "…"}

NOT_FETCHED_OUT_OF_TIME = LookupFailure(
    "Not fetched: the batch ran out of time",
    "This customer was never sent to Align. Open the customer to look them up on their own.",
    504,
    "transient",
)
NOT_FETCHED_UNWATCHED = LookupFailure(
    "Not fetched: nobody was watching the batch",
    "The page was left for over a minute, so the rest of the list was not sent to Align.",
    504,
    "transient",
)
UNEXPECTED_FAILURE = LookupFailure(
    "Something went wrong on our side",
    "The error was logged. Open the customer to look them up on their own.",
    500,
)


@dataclass(frozen=True)
class RailMark:
    """One breakdown row, compact: "USD·ACH ✓"."""

    label: str
    mark: str
    status: str


@dataclass(frozen=True)
class BatchRow:
    """One customer of a batch, with only what the table and the CSV show: never an address."""

    position: int  # in the pasted list, from 0
    customer_id: str
    category: str
    needs_resubmission: bool = False
    customer_type: Badge | None = None
    name: str = ""
    status: Badge | None = None
    sub_status: Badge | None = None
    breakdown: tuple[RailMark, ...] = ()
    kyc_link: str = ""  # only a link web_link accepts
    link_offer: str = ""  # a presentation.LinkProminence, or "" without a link to copy
    link_problem: str = ""  # why there is no link to copy
    outcome: str = ""  # AuditEvent.Outcome, or "not_fetched"
    failure: LookupFailure | None = None
    email: str = ""  # only when the user may export e-mail addresses

    @property
    def status_rank(self) -> int:
        category = Category.NEEDS_RESUBMISSION if self.needs_resubmission else self.category
        return STATUS_SORT_ORDER.index(category)

    @property
    def short_id(self) -> str:
        return presentation.short_customer_id(self.customer_id)

    @property
    def breakdown_text(self) -> str:
        return " ".join(f"{rail.label} {rail.mark}" for rail in self.breakdown)

    @property
    def outcome_words(self) -> str:
        return self.failure.title if self.failure else "Found"

    def to_cache(self) -> dict:
        """Plain values only, so a batch written by one version of the code is read by the next."""
        return asdict(self)

    @classmethod
    def from_cache(cls, data: dict) -> "BatchRow":
        def badge(value: dict | None) -> Badge | None:
            return Badge(**value) if value else None

        return cls(
            **data
            | {
                "customer_type": badge(data["customer_type"]),
                "status": badge(data["status"]),
                "sub_status": badge(data["sub_status"]),
                "breakdown": tuple(RailMark(**rail) for rail in data["breakdown"]),
                "failure": LookupFailure(**data["failure"]) if data["failure"] else None,
            }
        )


def customer_row(position: int, customer: Customer, *, with_email: bool) -> BatchRow:
    """The row of a customer Align answered for, in the single view's words."""
    kyc = customer.kycs
    summary = presentation.kyc_summary(kyc)
    link, link_offer, link_problem = _link(kyc)
    return BatchRow(
        position=position,
        customer_id=str(customer.customer_id),
        category=_category(customer),
        needs_resubmission=kyc is not None
        and kyc.status == KycStatus.PENDING
        and kyc.sub_status == KycSubStatus.RESUBMISSION_REQUIRED,
        customer_type=presentation.customer_type_badge(customer.type),
        name=customer.display_name or "",
        status=summary.badge,
        sub_status=summary.sub_status,
        breakdown=tuple(
            RailMark(
                label=presentation.breakdown_label(row).replace(" · ", "·"),
                mark=RAIL_MARKS.get(row.status, "?"),
                status=presentation.breakdown_status_badge(row.status).label,
            )
            for row in (kyc.status_breakdown if kyc else ())
        ),
        kyc_link=link,
        link_offer=link_offer,
        link_problem=link_problem,
        outcome=AuditEvent.Outcome.FOUND,
        email=customer.email if with_email else "",
    )


def _category(customer: Customer) -> str:
    kyc = customer.kycs
    if kyc is None:
        return Category.NOT_STARTED
    return {
        KycStatus.APPROVED: Category.APPROVED,
        KycStatus.PENDING: Category.PENDING,
        KycStatus.REJECTED: Category.REJECTED,
    }.get(kyc.status, Category.UNKNOWN)


def _link(kyc) -> tuple[str, str, str]:
    """The link to copy and how it is offered, or why there is none (the single view's rules)."""
    if kyc is None:
        return "", "", "No KYC link yet"
    link = presentation.web_link(kyc.kyc_flow_link)
    if link is None:
        problem = "Not a web link: open the customer" if kyc.kyc_flow_link else "Align sent no KYC link"
        return "", "", problem
    return link, presentation.link_offer(kyc).prominence, ""


def failure_row(position: int, customer_id: uuid.UUID, failure: LookupFailure, outcome: str) -> BatchRow:
    """A customer that could not be shown, with the words of the single view's failure card."""
    if outcome == AuditEvent.Outcome.NOT_FOUND:
        category = Category.NOT_FOUND
    elif outcome == "not_fetched":
        category = Category.NOT_FETCHED
    else:
        category = Category.FAILED
    return BatchRow(
        position=position, customer_id=str(customer_id), category=category, outcome=outcome, failure=failure
    )


def summary_line(counts: dict[str, int]) -> str:
    """ "42 approved · 31 pending (12 need resubmission) · 3 rejected · 2 not found · 1 failed"."""
    parts = []
    for category, (_, words) in CATEGORY_WORDS.items():
        number = counts.get(category, 0)
        if category == Category.NEEDS_RESUBMISSION or not number:
            continue
        part = f"{number:,} {words}"
        if category == Category.PENDING and counts.get(Category.NEEDS_RESUBMISSION):
            part += (
                f" ({counts[Category.NEEDS_RESUBMISSION]:,} {CATEGORY_WORDS[Category.NEEDS_RESUBMISSION][1]})"
            )
        parts.append(part)
    return " · ".join(parts)


def matches(row: BatchRow, category: str) -> bool:
    """Whether a row belongs under a chip: the table's filter and the CSV's ?status=."""
    if category == Category.NEEDS_RESUBMISSION:
        return row.needs_resubmission
    return row.category == category


# --- The CSV of a batch ----------------------------------------------------------------------

CSV_COLUMNS = [
    "Customer ID",
    "Type",
    "Name or company",
    "KYC status",
    "Sub-status",
    "Breakdown",
    "KYC link",
    "Outcome",
]
EMAIL_COLUMN = "E-mail"


def csv_records(rows: Iterable[BatchRow], *, with_email: bool) -> Iterator[list[str]]:
    """The header and one record per row, in list order, every cell safe from formulas."""
    yield CSV_COLUMNS + ([EMAIL_COLUMN] if with_email else [])
    for row in sorted(rows, key=lambda row: row.position):
        record = [
            row.customer_id,
            row.customer_type.label if row.customer_type else "",
            row.name,
            row.status.label if row.status else "",
            row.sub_status.label if row.sub_status else "",
            "; ".join(f"{rail.label}: {rail.status}" for rail in row.breakdown),
            row.kyc_link,
            row.outcome_words,
        ]
        if with_email:
            record.append(row.email)
        yield [spreadsheet_safe(cell) for cell in record]


# --- Batch state in the cache ----------------------------------------------------------------

# Kept this long after the last look (each page view and poll moves it on): "kept while watched".
RESULTS_TTL_SECONDS = 30 * 60
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
RUNNING = "running"
FINISHED = "finished"


def _key(batch_id: uuid.UUID | str, *parts: object) -> str:
    return ":".join(["kycdesk:bulk", str(batch_id), *(str(part) for part in parts)])


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

    @property
    def stalled(self) -> bool:
        """Still marked running long after its deadline: the process running it stopped."""
        return not self.finished and time.time() > self.ends_by

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

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


def read_batch(batch_id: uuid.UUID) -> BatchState | None:
    """The batch's state, or None when it has expired (or never existed)."""
    found = cache.get_many([_key(batch_id), _key(batch_id, "progress")])
    meta = found.get(_key(batch_id))
    if meta is None:
        return None
    progress = found.get(_key(batch_id, "progress")) or {"done": 0, "counts": {}}
    return BatchState(
        **meta
        | {
            "rejected": tuple(RejectedEntry(**entry) for entry in meta["rejected"]),
            "done": progress["done"],
            "counts": progress["counts"],
        }
    )


def rows_after(state: BatchState, after: int = 0) -> list[BatchRow]:
    """The rows completed after the first `after`, in the order they completed.

    Rows are read up to the first one missing, so a poll never skips a row: the next poll, which
    starts after the rows it was given, picks the rest up.
    """
    if state.finished:
        stored = cache.get(_key(state.batch_id, "rows")) or []
        return [BatchRow.from_cache(row) for row in stored[after:]]
    keys = [_key(state.batch_id, "row", index) for index in range(max(after, 0), state.done)]
    found = cache.get_many(keys)
    rows = []
    for key in keys:
        if key not in found:
            break
        rows.append(BatchRow.from_cache(found[key]))
    return rows


def keep_watching(state: BatchState) -> None:
    """Someone is looking: keep the batch for another RESULTS_TTL_SECONDS, and keep it running."""
    batch_id = state.batch_id
    cache.set(_key(batch_id, "watched"), time.time(), RESULTS_TTL_SECONDS)
    for key in (_key(batch_id), _key(batch_id, "progress"), _key(batch_id, "rows")):
        cache.touch(key, RESULTS_TTL_SECONDS)


def batch_deadline_seconds(customers: int, *, pool_size: int, lookup_timeout: float) -> float:
    """ceil(n / pool) rounds of the per-lookup deadline, plus slack, at most MAX_DEADLINE_SECONDS."""
    rounds = math.ceil(customers / pool_size)
    return min(rounds * lookup_timeout + DEADLINE_SLACK_SECONDS, MAX_DEADLINE_SECONDS)


# --- Running a batch -------------------------------------------------------------------------


class TooManyBatches(Exception):
    """MAX_RUNNING_BATCHES batches are running in this process already."""


_slots = threading.BoundedSemaphore(MAX_RUNNING_BATCHES)
_runners: dict[str, "BatchRunner"] = {}
_runners_lock = threading.Lock()


def start_batch(actor: audit.Actor, found: CustomerList, *, with_email: bool) -> uuid.UUID:
    """Record the batch, store its first state and start fetching; the batch ID for its page.

    Raises TooManyBatches, or audit.AuditUnavailable when the batch cannot be put on record (then
    nothing is fetched).
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
        runner.start()
    except BaseException:
        _slots.release()
        raise
    metrics.BULK_LOOKUPS.inc()
    return batch.pk


def running_batch(batch_id: uuid.UUID | str) -> "BatchRunner | None":
    """The runner of a batch still running in this process (for tests and the benchmark)."""
    with _runners_lock:
        return _runners.get(str(batch_id))


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
            "status": RUNNING,
            "finished_at": None,
            # Past this (wall clock, for every instance), a batch still "running" has lost its
            # runner (a restarted worker): the page stops waiting for it.
            "ends_by": time.time()
            + self.deadline_seconds
            + settings.ALIGN_API_TIMEOUT
            + STALLED_GRACE_SECONDS,
        }

    def start(self) -> None:
        cache.set_many(
            {
                _key(self.batch_id): self._meta,
                _key(self.batch_id, "progress"): {"done": 0, "counts": {}},
                _key(self.batch_id, "watched"): self._watched_at,
            },
            RESULTS_TTL_SECONDS,
        )
        with _runners_lock:
            _runners[self.batch_id] = self
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the batch to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

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
            self._finish()
        finally:
            logger.info(
                "Bulk lookup %s ended: %d customers, %d not fetched, elapsed_ms=%d",
                self.batch_id,
                len(self._rows),
                self._counts[Category.NOT_FETCHED],
                (time.monotonic() - started) * 1000,
            )
            with _runners_lock:
                _runners.pop(self.batch_id, None)
            connection.close()
            _slots.release()

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
        """The single view's audited fetch, except that a rate limit pauses the batch instead."""
        if not self._wait_for_turn(position, customer_id):
            return
        try:
            event = audit.start_lookup_as(self.actor, customer_id, batch_id=uuid.UUID(self.batch_id))
        except audit.AuditUnavailable:
            self._record(
                failure_row(position, customer_id, presentation.AUDIT_UNAVAILABLE, "audit_unavailable")
            )
            return
        try:
            customer = client.customer_get(customer_id=customer_id, wait_on_rate_limit=False)
        except client.RateLimited as error:
            audit.finish_lookup(event, error=error)
            if self._pause_for(error):
                with self._lock:
                    self._queue.append((position, customer_id))
                return
            self._record(self._failed(position, customer_id, error))
            return
        except client.AlignError as error:
            audit.finish_lookup(event, error=error)
            self._record(self._failed(position, customer_id, error))
            return
        audit.finish_lookup(event, customer=customer)
        self._record(customer_row(position, customer, with_email=self.with_email))

    @staticmethod
    def _failed(position: int, customer_id: uuid.UUID, error: client.AlignError) -> BatchRow:
        failure = presentation.describe_failure(error)
        return failure_row(position, customer_id, failure, audit.outcome_of_failure(error))

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
                self._watched_at = cache.get(_key(self.batch_id, "watched"), self._watched_at)
            return time.time() - self._watched_at <= NOT_WATCHED_AFTER_SECONDS

    def _record(self, row: BatchRow) -> None:
        """Put the row in the cache, then count it: a poll that sees the count finds the row."""
        with self._lock:
            index = len(self._rows)
            cache.set(_key(self.batch_id, "row", index), row.to_cache(), RESULTS_TTL_SECONDS)
            self._rows.append(row)
            self._counts[row.category] += 1
            if row.needs_resubmission:
                self._counts[Category.NEEDS_RESUBMISSION] += 1
            cache.set(
                _key(self.batch_id, "progress"),
                {"done": len(self._rows), "counts": dict(self._counts)},
                RESULTS_TTL_SECONDS,
            )

    def _finish(self) -> None:
        """All rows under one key, the batch marked finished, the per-row keys dropped; on record."""
        with self._lock:
            rows = [row.to_cache() for row in self._rows]
            not_fetched = self._counts[Category.NOT_FETCHED]
        self._meta |= {"status": FINISHED, "finished_at": datetime.now(UTC)}
        cache.set(_key(self.batch_id, "rows"), rows, RESULTS_TTL_SECONDS)
        cache.set(_key(self.batch_id), self._meta, RESULTS_TTL_SECONDS)
        cache.delete_many([_key(self.batch_id, "row", index) for index in range(len(rows))])
        audit.finish_bulk_lookup(uuid.UUID(self.batch_id), not_fetched=not_fetched)


def rerun_list(batch_id: uuid.UUID) -> list[str]:
    """The customers an expired batch sent to Align, in order, from its audit rows (IDs only)."""
    lookups = AuditEvent.objects.filter(batch_id=batch_id, action=AuditEvent.Action.LOOKUP).order_by("id")
    return [str(customer_id) for customer_id in dict.fromkeys(lookups.values_list("customer_id", flat=True))]
