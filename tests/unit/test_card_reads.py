"""What one customer card costs the database (issue #21, item 2): the queries of an htmx lookup, the
card's audit rows in one read, and reads that stay the same size however often a customer is looked up
(customers/services/audit.py: card_trail, the marks finish_lookup sets; customers/services/history.py)."""

import random
import re
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from customers.align import client
from customers.align.records import Customer
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import audit
from customers.services.history import KycState, build_history

pytestmark = pytest.mark.django_db

ADA = uuid.UUID(DemoId.INDIVIDUAL_APPROVED)
GRACE = uuid.UUID(DemoId.FORM_STARTED)
Action, Outcome = AuditEvent.Action, AuditEvent.Outcome


def grace_in(status: str | None, sub_status: str | None = None) -> Customer:
    """Grace as Align answers when her KYC is `status` (None: no KYC record at all)."""
    body = dict(DEMO_CUSTOMERS[str(GRACE)])
    body["kycs"] = None if status is None else body["kycs"] | {"status": status, "sub_status": sub_status}
    return Customer.from_api(body, customer_id=GRACE)


def actor_of(user) -> audit.Actor:
    return audit.Actor(user=user, client_ip="203.0.113.9", request_id="cardreads001")


def looked_up(user, customer: Customer | None, customer_id=GRACE) -> AuditEvent:
    """One lookup through the audit trail, as the view makes it: on record, then its outcome."""
    event = audit.start_lookup_as(actor_of(user), customer_id)
    if customer is None:
        audit.finish_lookup(event, error=client.CustomerNotFound("not found"))
    else:
        audit.finish_lookup(event, customer=customer)
    return AuditEvent.objects.get(pk=event.pk)


def webhook(status: str, sub_status: str = "") -> KycWebhookEvent:
    return KycWebhookEvent.objects.create(
        delivery_key=uuid.uuid4().hex * 2,
        customer_id=GRACE,
        event_created_at=timezone.now(),
        kyc_status=status,
        kyc_sub_status=sub_status,
    )


def session_started(user) -> AuditEvent:
    event = audit.start_kyc_session(actor_of(user), GRACE)
    audit.finish_kyc_session(
        event, session=client.KycSession(status="pending", kyc_flow_link="https://x.invalid")
    )
    return event


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="j.smith")


# --- The queries of one htmx lookup --------------------------------------------------------------


@pytest.fixture
def verified_client(staff_user) -> Client:
    """The staff user signed in and verified with a code from their authenticator app, as at work."""
    device = TOTPDevice.objects.create(user=staff_user, name="Authenticator app", confirmed=True)
    signed_in = Client()
    signed_in.force_login(staff_user)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = signed_in.post("/accounts/two-factor/verify/", {"token": code})
    assert response.status_code == 302, "the code was refused"
    return signed_in


def test_an_htmx_lookup_of_a_verified_user_makes_six_queries(
    verified_client, serve, htmx_headers, django_assert_num_queries, settings
):
    """The session; the user with their access stamp; the audit row, then its outcome; Align's
    webhooks; the card's audit rows. Permissions and the second factor come from the session.

    Five with sessions in Redis (REDIS_URL), where reading the session is no query.
    """
    sessions_in_the_database = settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    serve(DemoId.FORM_STARTED)
    serve(DemoId.FORM_STARTED)
    verified_client.get(f"/customers/{GRACE}/", headers=htmx_headers)  # a card seen before: History has rows
    with django_assert_num_queries(6 if sessions_in_the_database else 5) as queries:
        response = verified_client.get(f"/customers/{GRACE}/?refresh=1", headers=htmx_headers)
    assert response.status_code == 200
    assert "Grace Hopper" in response.content.decode()
    assert not [query for query in queries if "auth_permission" in query["sql"] or "otp_" in query["sql"]]


def test_the_cards_audit_rows_are_one_query(staff_user, other_user, django_assert_num_queries):
    looked_up(other_user, grace_in("pending", "kyc_form_submission_started"))
    session_started(other_user)
    AuditEvent.objects.create(
        user=other_user, action=Action.LINK_COPIED, customer_id=GRACE, outcome=Outcome.COPIED
    )
    looked_up(staff_user, grace_in("pending", "kyc_form_submission_started"))
    with django_assert_num_queries(1):
        trail = audit.card_trail(customer_id=GRACE, user=staff_user)
        names = [event.user.get_username() for event in (*trail.kyc_changes, *trail.link_copies)]
    assert len(trail.kyc_changes) == 2
    assert [event.action for event in trail.session_starts] == [Action.KYC_SESSION_STARTED]
    assert names == [staff_user.username, other_user.username, other_user.username]
    assert [event.customer_id for event in trail.recent_lookups] == [GRACE]


# --- What a lookup's outcome marks for later cards to skip ----------------------------------------

PENDING_STARTED = ("pending", "kyc_form_submission_started")


def test_a_lookup_that_sees_what_the_lookup_before_it_saw_is_marked_unchanged(staff_user, other_user):
    first = looked_up(staff_user, grace_in(*PENDING_STARTED))
    second = looked_up(other_user, grace_in(*PENDING_STARTED))
    assert (first.kyc_unchanged, second.kyc_unchanged) == (False, True)


@pytest.mark.parametrize(
    "between",
    [
        lambda user: looked_up(user, grace_in("approved")),
        lambda user: looked_up(user, grace_in("pending", "kyc_form_resubmission_required")),
        lambda user: looked_up(user, None),
        lambda user: audit.start_lookup_as(actor_of(user), GRACE),  # its outcome not written (yet)
        lambda user: webhook(*PENDING_STARTED),  # even of the same state: History shows Align's word
        lambda user: session_started(user),
    ],
    ids=[
        "another state",
        "another sub-status",
        "a failed lookup",
        "a started lookup",
        "a webhook",
        "a session",
    ],
)
def test_a_lookup_is_not_marked_unchanged_when_something_history_shows_came_between(staff_user, between):
    looked_up(staff_user, grace_in(*PENDING_STARTED))
    between(staff_user)
    assert looked_up(staff_user, grace_in(*PENDING_STARTED)).kyc_unchanged is False


def test_a_users_cards_of_one_customer_in_a_row_are_marked_as_repeating_all_but_the_first(
    staff_user, other_user
):
    pending = grace_in(*PENDING_STARTED)
    runs = [
        looked_up(staff_user, pending),
        looked_up(staff_user, None),  # a failed lookup shows a card too, and says so in the list
        looked_up(other_user, pending),  # a colleague's cards are runs of their own
        looked_up(staff_user, pending),
        looked_up(staff_user, pending, customer_id=ADA),
        looked_up(staff_user, pending),
    ]
    assert [event.repeats_last_card for event in runs] == [False, True, False, True, False, False]


def test_a_bulk_lookups_rows_are_not_cards_and_are_never_marked_as_repeating(staff_user):
    batch = audit.record_bulk_lookup(
        actor_of(staff_user), ids_submitted=2, ids_valid=2, duplicates=0, rejected=0
    )
    rows = []
    for _ in range(2):
        event = audit.start_lookup_as(actor_of(staff_user), GRACE, batch_id=batch.pk)
        audit.finish_lookup(event, customer=grace_in(*PENDING_STARTED))
        rows.append(AuditEvent.objects.get(pk=event.pk))
    assert [(row.repeats_last_card, row.kyc_unchanged) for row in rows] == [(None, False), (None, True)]


# --- History read from the changes is History read from every lookup -----------------------------

STATES = [
    ("pending", "kyc_form_submission_started"),
    ("pending", "kyc_form_resubmission_required"),
    ("pending", None),  # a sub-status Align did not send: matches any, and is learnt from the next
    ("approved", None),
    ("rejected", None),
    (None, None),  # no KYC record
]


@pytest.mark.parametrize("seed", range(6))
def test_history_from_the_changes_alone_is_history_from_every_lookup(staff_user, other_user, seed):
    """Whatever the mix of lookups (found, failed, started), webhooks and new sessions, by whom."""
    randomly = random.Random(seed)
    state = randomly.choice(STATES)
    for _ in range(90):
        roll = randomly.random()
        user = randomly.choice([staff_user, other_user])
        if roll < 0.12:
            state = randomly.choice(STATES)
        if roll < 0.7:
            looked_up(user, grace_in(*state))
        elif roll < 0.78:
            looked_up(user, None)
        elif roll < 0.82:
            audit.start_lookup_as(actor_of(user), GRACE)
        elif roll < 0.94:
            said = state if randomly.random() < 0.5 else randomly.choice(STATES)
            webhook(said[0] or "", said[1] or "")
        else:
            session_started(user)
    current = KycState.of_customer(grace_in(*state))
    now = timezone.now()
    webhooks = list(KycWebhookEvent.objects.filter(customer_id=GRACE).order_by("-id"))
    every_lookup = AuditEvent.objects.filter(customer_id=GRACE, action=Action.LOOKUP, outcome=Outcome.FOUND)
    trail = audit.card_trail(customer_id=GRACE, user=staff_user)
    assert AuditEvent.objects.filter(kyc_unchanged=True).count() > 10  # there was something to skip
    assert len(trail.kyc_changes) < audit.KYC_CHANGES_READ  # ... and the bound plays no part here

    def history_of(lookups, starts):
        return build_history(
            webhooks, lookups, starts, viewer_id=staff_user.pk, current=current, current_at=now
        )

    every_start = AuditEvent.objects.filter(customer_id=GRACE, action=Action.KYC_SESSION_STARTED)
    expected = history_of(
        every_lookup.select_related("user").order_by("-id"),
        every_start.filter(outcome=Outcome.SESSION_STARTED).order_by("-id")[: audit.KYC_SESSION_STARTS_READ],
    )
    assert history_of(trail.kyc_changes, trail.session_starts) == expected


def test_the_card_reads_only_the_lookups_that_changed_the_state(staff_client, serve, other_user):
    """And History still says what every lookup would have made of it."""
    looked_up(other_user, grace_in("pending", "kyc_form_resubmission_required"))
    for _ in range(30):
        looked_up(other_user, grace_in(*PENDING_STARTED))
    trail = audit.card_trail(customer_id=GRACE, user=other_user)
    assert [(event.kyc_status, event.kyc_sub_status) for event in trail.kyc_changes] == [
        PENDING_STARTED,
        ("pending", "kyc_form_resubmission_required"),
    ]
    serve(DemoId.FORM_STARTED)
    page = staff_client.get(f"/customers/{GRACE}/").content.decode()
    entries = re.findall(r'<span class="history-meta">since <time[^>]*>[^<]*</time> · ([^<]*)</span>', page)
    assert entries == ["seen by j.smith", "seen by j.smith"]  # Form started, then Resubmission required


# --- Your recent lookups, one entry per run ------------------------------------------------------


def test_a_long_run_of_one_customer_is_one_entry_and_read_in_one_query(staff_user, django_assert_num_queries):
    earlier = [uuid.UUID(int=0x5000 + number, version=4) for number in range(12)]
    for customer_id in earlier:
        looked_up(staff_user, grace_in("approved"), customer_id=customer_id)
    for _ in range(120):  # an open pending page refreshing itself for two hours
        newest = looked_up(staff_user, grace_in(*PENDING_STARTED))
    with django_assert_num_queries(1):
        recent = audit.recent_lookups(staff_user)
    assert [event.customer_id for event in recent] == [GRACE, *earlier[::-1][:9]]
    assert (recent[0].pk, recent[0].kyc_status) == (newest.pk, "pending")


def test_going_back_and_forth_between_two_customers_reads_on_until_the_others(
    staff_user, django_assert_num_queries
):
    earlier = [uuid.UUID(int=0x6000 + number, version=4) for number in range(9)]
    for customer_id in earlier:
        looked_up(staff_user, grace_in("approved"), customer_id=customer_id)
    for _ in range(20):  # two open pages refreshing themselves in turn: 40 runs of one card
        looked_up(staff_user, grace_in(*PENDING_STARTED))
        looked_up(staff_user, grace_in(*PENDING_STARTED), customer_id=ADA)
    with django_assert_num_queries(2):
        recent = audit.recent_lookups(staff_user)
    assert [event.customer_id for event in recent] == [ADA, GRACE, *earlier[::-1][:8]]
    trail = audit.card_trail(customer_id=ADA, user=staff_user)
    assert trail.recent_lookups == recent


sqlite_query_plans = pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plan")


def sqlite_plan_of(call) -> str:
    """SQLite's plan of the one statement `call` makes, with its values bound as they are at work.

    Not the SQL CaptureQueriesContext shows, whose values are written in: SQLite can prove a partial
    index's condition from a value written in, never from one bound, so such a plan can be one the
    dashboard never gets.
    """
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    ((sql, params),) = statements
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " / ".join(str(row[-1]) for row in cursor.fetchall())


@sqlite_query_plans
def test_the_cards_one_query_walks_bounded_indexes_without_sorting(staff_user, other_user):
    for _ in range(40):
        looked_up(other_user, grace_in(*PENDING_STARTED))
        looked_up(staff_user, grace_in(*PENDING_STARTED))
    plan = sqlite_plan_of(lambda: audit.card_trail(customer_id=GRACE, user=staff_user))
    for walk in (
        "audit_customer_kyc_changes (customer_id=? AND action=? AND outcome=?)",
        "audit_customer_action_recent (customer_id=? AND action=?)",  # sessions and link copies
        "audit_user_shown_recent (user_id=?)",
        "audit_user_customer_cards (user_id=? AND customer_id=?)",
    ):
        assert walk in plan
    assert "TEMP B-TREE" not in plan
    assert "SCAN customers_auditevent" not in plan  # the walks' own rows are scanned, never the table


@sqlite_query_plans
def test_the_marks_are_decided_by_seeks_however_long_the_trail(staff_user):
    for _ in range(20):
        looked_up(staff_user, grace_in(*PENDING_STARTED))
    event = audit.start_lookup_as(actor_of(staff_user), GRACE)
    plan = sqlite_plan_of(lambda: audit.finish_lookup(event, customer=grace_in(*PENDING_STARTED)))
    # the customer's lookup before: by minus its ID (NEWEST_FIRST), the first below this row's
    assert "audit_customer_action_recent (customer_id=? AND action=? AND <expr>>?)" in plan
    assert "webhook_customer_since (customer_id=? AND event_created_at>?)" in plan
    # the user's card before: the newest first card of a run below this row
    assert "audit_user_shown_recent (user_id=? AND <expr>>?)" in plan
    assert "SCAN customers_auditevent" not in plan
