"""Everything one user did, newest first, on one page: an auditor's "what did j.smith do?" (issue #19).

Eight records hold it: the audit log's lookups, searches by e-mail, link copies and KYC session
starts (a record per action, each read through the audit_user_action_recent index), the bulk
lookups and their CSV downloads, the audit log's exports, and the sign-ins and sign-outs
(dashboard.accounts). Each is read newest first, a page and one row at a time, and the reads are
merged by time. The "Older" link carries where each record's rows on the page ended (keyset
paging): any page costs what the first does, no row is on two pages or on none, and what the
user does meanwhile waits for the first page rather than heading an older one.
"""

import heapq
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import BadRequest, ValidationError
from django.db.models import Model, Q
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString

from customers.admin.base import breakable_ip
from customers.admin.words import seen_status, seen_sub_status
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport
from customers.services.bulk.rows import CATEGORY_WORDS
from customers.services.decisions import Badge
from dashboard.accounts.models import SignInEvent
from dashboard.ops.records_admin import audit_time

TEMPLATE = "admin/customers/auditevent/activity.html"
PAGE_SIZE = 50
# Joins the values of a record's keys where the "Older" link says a page ended (a time, a batch ID).
KEY_SEPARATOR = "~"
# Starts a place that holds its row too: where a record none of whose rows were shown yet begins.
FROM = "from:"


@dataclass(frozen=True)
class ActivityRow:
    """One thing the user did, in words, and the admin page that tells all of it."""

    at: datetime
    what: str
    detail_url: str | None = None
    customer_id: uuid.UUID | None = None
    outcome: str = ""
    kyc_status: Badge | None = None
    kyc_sub_status: Badge | None = None
    client_ip: str | None = None
    request_id: str = ""

    @property
    def time(self) -> SafeString:
        return audit_time(self.at)

    @property
    def client_ip_text(self) -> SafeString | None:
        return None if self.client_ip is None else breakable_ip(self.client_ip)

    @property
    def customer_url(self) -> str | None:
        """The audit log searched for this customer: who looked them up, and when."""
        if self.customer_id is None:
            return None
        return f"{reverse('admin:customers_auditevent_changelist')}?{urlencode({'q': self.customer_id})}"


@dataclass(frozen=True)
class Record:
    """One record of what users do, read newest first along `keys` (its index's order, descending)."""

    name: str  # its parameter in the "Older" link
    model: type[Model]
    keys: tuple[str, ...]
    row: Callable[[Model], ActivityRow]
    condition: Q = field(default_factory=Q)

    def newest(self, user: AbstractBaseUser, place: str | None) -> list[Model]:
        """The user's newest rows after `place` (where the last page ended here): a page and one more."""
        rows = self.model._default_manager.filter(self.condition, user=user)
        if place is not None:
            rows = rows.filter(self._from(place))
        return list(rows.order_by(*(f"-{key}" for key in self.keys))[: PAGE_SIZE + 1])

    def after(self, row: Model) -> str:
        """The place of the rows after `row`, for the "Older" link: the values of its keys."""
        return KEY_SEPARATOR.join(str(getattr(row, key)) for key in self.keys)

    def starting_at(self, row: Model) -> str:
        """The place of `row` and the rows after it."""
        return FROM + self.after(row)

    def _from(self, place: str) -> Q:
        """The rows at `place`: an earlier first key, or an equal one and an earlier second (or equal,
        for a place that holds its row)."""
        texts = place.removeprefix(FROM).split(KEY_SEPARATOR)
        if len(texts) != len(self.keys):
            raise BadRequest(f"Not a place in the {self.name} record")
        rows, equal = Q(), Q()
        for key, text in zip(self.keys, texts, strict=True):
            try:
                value = self.model._meta.get_field(key).to_python(text)
            except ValidationError as error:
                raise BadRequest(f"Not a place in the {self.name} record") from error
            rows |= equal & Q(**{f"{key}__lt": value})
            equal &= Q(**{key: value})
        return rows | equal if place.startswith(FROM) else rows


@dataclass(frozen=True)
class ActivityPage:
    rows: tuple[ActivityRow, ...]
    # The query of the next page's address (where each record's rows ended); None on the last page.
    older: Mapping[str, str] | None


def activity_page(user: AbstractBaseUser, after: Mapping[str, str]) -> ActivityPage:
    """A page of the user's activity, newest first, after where the last page ended in each record.

    `after` is the page's query: a record it does not name is read from its newest row.
    """
    places = {record.name: after[record.name] for record in RECORDS if record.name in after}
    read = [
        [(record.row(row), record, row) for row in record.newest(user, places.get(record.name))]
        for record in RECORDS
    ]
    # Each record's rows stay in their own order, so a page always ends each record at one place.
    merged = heapq.merge(*read, key=lambda item: item[0].at, reverse=True)
    shown = list(islice(merged, PAGE_SIZE))
    places |= {record.name: record.after(row) for _, record, row in shown}
    # A record none of whose rows were shown yet starts the next page at the newest row read, so a
    # row it gains meanwhile waits for the first page rather than heading an older one.
    for record, rows in zip(RECORDS, read, strict=True):
        if rows and record.name not in places:
            places[record.name] = record.starting_at(rows[0][2])
    more = sum(len(rows) for rows in read) > len(shown)
    return ActivityPage(rows=tuple(row for row, _, _ in shown), older=places if more else None)


def activity_response(
    request: HttpRequest, admin_site: AdminSite, person: AbstractBaseUser
) -> TemplateResponse:
    """The activity page of `person`, for an auditor: the records' rows and the way to older ones."""
    page = activity_page(person, request.GET)
    username = person.get_username()
    audit_log = reverse("admin:customers_auditevent_changelist")
    context = {
        **admin_site.each_context(request),
        "title": f"Everything {username} did",
        "opts": AuditEvent._meta,
        "username": username,
        "rows": page.rows,
        "older_url": f"?{urlencode(page.older)}" if page.older else None,
        "first_page": not any(record.name in request.GET for record in RECORDS),
        "audit_log_url": f"{audit_log}?{urlencode({'user__id__exact': person.pk})}",
    }
    return TemplateResponse(request, TEMPLATE, context)


# --- Each record's rows in words -------------------------------------------------------------------


def audit_event_row(event: AuditEvent) -> ActivityRow:
    return ActivityRow(
        at=event.occurred_at,
        what=_audit_event_what(event),
        detail_url=reverse("admin:customers_auditevent_change", args=[event.pk]),
        customer_id=event.customer_id,
        outcome=_audit_event_outcome(event),
        kyc_status=seen_status(event),
        kyc_sub_status=seen_sub_status(event),
        client_ip=event.client_ip,
        request_id=event.request_id,
    )


def _audit_event_what(event: AuditEvent) -> str:
    """The action as the list names it; a lookup says whether it was a refresh, and whose."""
    if event.action != AuditEvent.Action.LOOKUP:
        return event.get_action_display()
    if event.batch_id is not None:
        return "Lookup in a bulk lookup"
    if event.automatic:
        return "Automatic refresh"
    return "Refresh" if event.is_refresh else "Lookup"


def _audit_event_outcome(event: AuditEvent) -> str:
    """The outcome as the list names it; a search by e-mail that got an answer says how many it found."""
    if event.action == AuditEvent.Action.EMAIL_SEARCH and event.match_count is not None:
        count = event.match_count
        return "No match" if count == 0 else f"{count:,} match{'' if count == 1 else 'es'}"
    return event.get_outcome_display()


def _record_row(record, *, at: datetime, what: str, outcome: str) -> ActivityRow:
    """A row for one of the desk's records of a user's action, leading to its own admin page."""
    detail_url = reverse(f"admin:customers_{record._meta.model_name}_change", args=[record.pk])
    return ActivityRow(
        at=at,
        what=what,
        detail_url=detail_url,
        outcome=outcome,
        client_ip=record.client_ip,
        request_id=record.request_id,
    )


def bulk_lookup_row(batch: BulkLookup) -> ActivityRow:
    not_fetched = f", {batch.not_fetched:,} not fetched" if batch.not_fetched else ""
    outcome = f"{batch.ids_valid:,} customer IDs{not_fetched}"
    return _record_row(batch, at=batch.started_at, what="Bulk lookup", outcome=outcome)


def bulk_export_row(export: BulkLookupExport) -> ActivityRow:
    parts = [f"{export.rows:,} customers"]
    if export.status_filter:
        parts.append(f"{CATEGORY_WORDS.get(export.status_filter, (export.status_filter,))[0]} only")
    if export.with_email:
        parts.append("with e-mail addresses")
    return _record_row(
        export, at=export.exported_at, what="Bulk lookup CSV downloaded", outcome=" · ".join(parts)
    )


def audit_export_row(export: AuditExport) -> ActivityRow:
    chosen = "every event the filters matched" if export.all_matching else "rows ticked on one page"
    outcome = f"{export.rows:,} events: {chosen}"
    return _record_row(export, at=export.exported_at, what="Audit log exported as CSV", outcome=outcome)


def sign_in_row(event: SignInEvent) -> ActivityRow:
    """All a sign-in holds is on its row, so it links nowhere (its own admin needs another permission)."""
    return ActivityRow(
        at=event.occurred_at,
        what=event.get_kind_display(),
        client_ip=event.client_ip,
        request_id=event.request_id,
    )


RECORDS = (
    *(
        Record(str(action), AuditEvent, ("id",), audit_event_row, Q(action=action))
        for action in AuditEvent.Action
    ),
    Record("bulk_lookup", BulkLookup, ("started_at", "id"), bulk_lookup_row),
    Record("bulk_export", BulkLookupExport, ("id",), bulk_export_row),
    Record("audit_export", AuditExport, ("id",), audit_export_row),
    Record("sign_in", SignInEvent, ("id",), sign_in_row),
)
