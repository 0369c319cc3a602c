"""The KYC history on the customer card, and what an open page of a pending customer watches
(customers/services/history.py), with the card and the automatic refresh as the views render them."""

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from customers.align.standin.demo import DemoId
from customers.models import AuditEvent, KycWebhookEvent
from customers.services import history
from customers.services.history import KycState, Observation, build_history, fold

pytestmark = pytest.mark.django_db

GRACE = str(DemoId.FORM_STARTED)
ADA = str(DemoId.INDIVIDUAL_APPROVED)
PENDING_STARTED = KycState.of("pending", "kyc_form_submission_started")
PENDING_RESUBMIT = KycState.of("pending", "kyc_form_resubmission_required")
PENDING = KycState.of("pending")
APPROVED = KycState.of("approved")
VIEWER_ID = 7


def at(minutes: int):
    """A moment this many minutes into a fixed morning."""
    return timezone.make_aware(timezone.datetime(2026, 11, 24, 9, 0)) + timedelta(minutes=minutes)


def webhook(minutes: int, state: KycState, pk: int = 0) -> Observation:
    return Observation(at(minutes), state, history.ALIGN_SOURCE, True, pk)


def lookup(minutes: int, state: KycState, by: str = "seen by j.smith", pk: int = 0) -> Observation:
    return Observation(at(minutes), state, by, False, pk)


def words(entries) -> list[tuple[str, object, str]]:
    return [(entry.state.words, entry.since, entry.source) for entry in entries]


# --- The timeline: merged, folded, newest first ------------------------------------------------


def test_webhooks_and_lookups_merge_by_time_newest_first():
    entries = fold(
        [
            lookup(30, APPROVED, "seen by you"),
            webhook(0, PENDING_STARTED),
            webhook(20, APPROVED),
            lookup(10, PENDING_RESUBMIT),
        ]
    )
    assert words(entries) == [
        ("Approved", at(20), "Align"),
        ("Pending · Resubmission required", at(10), "seen by j.smith"),
        ("Pending · Form started", at(0), "Align"),
    ]


def test_consecutive_sightings_of_one_state_fold_into_the_first():
    entries = fold(
        [lookup(0, PENDING), lookup(5, PENDING), lookup(9, PENDING, "seen by you"), lookup(30, APPROVED)]
    )
    assert words(entries) == [("Approved", at(30), "seen by j.smith"), ("Pending", at(0), "seen by j.smith")]


def test_a_lookup_without_a_sub_status_folds_into_the_webhook_that_had_one():
    entries = fold([webhook(0, PENDING_STARTED), lookup(10, PENDING)])
    assert words(entries) == [("Pending · Form started", at(0), "Align")]


def test_a_run_that_began_with_a_lookup_claims_no_sub_status_but_learns_it_for_what_follows():
    entries = fold([lookup(0, PENDING), webhook(10, PENDING_STARTED), webhook(20, PENDING_RESUBMIT)])
    assert words(entries) == [
        ("Pending · Resubmission required", at(20), "Align"),
        ("Pending", at(0), "seen by j.smith"),
    ]


def test_a_state_that_comes_back_is_a_new_entry():
    entries = fold([webhook(0, PENDING), webhook(10, APPROVED), webhook(20, PENDING)])
    assert [entry.state.words for entry in entries] == ["Pending", "Approved", "Pending"]


def test_at_the_same_moment_align_comes_before_a_lookup():
    entries = fold([lookup(0, PENDING), webhook(0, PENDING_STARTED)])
    assert words(entries) == [("Pending · Form started", at(0), "Align")]


# --- Built from the records ---------------------------------------------------------------------


def event(minutes: int, status: str, sub_status: str = "", pk: int = 1) -> KycWebhookEvent:
    return KycWebhookEvent(
        pk=pk, customer_id=GRACE, event_created_at=at(minutes), kyc_status=status, kyc_sub_status=sub_status
    )


def seen(minutes: int, status: str, user, pk: int = 1) -> AuditEvent:
    return AuditEvent(
        pk=pk,
        user=user,
        action=AuditEvent.Action.LOOKUP,
        customer_id=GRACE,
        outcome=AuditEvent.Outcome.FOUND,
        kyc_status=status,
        occurred_at=at(minutes),
    )


def test_the_viewer_reads_you_and_others_read_the_username(django_user_model):
    smith = django_user_model(pk=8, username="j.smith")
    viewer = django_user_model(pk=VIEWER_ID, username="jane")
    built = build_history(
        [],
        [seen(0, "pending", smith), seen(10, "approved", viewer, pk=2)],
        viewer_id=VIEWER_ID,
        current=APPROVED,
    )
    assert [entry.source for entry in built.entries] == ["seen by you", "seen by j.smith"]


def test_the_newest_webhook_id_is_what_an_open_page_asks_after():
    built = build_history(
        [event(0, "pending", pk=4), event(5, "pending", pk=9)], [], viewer_id=1, current=PENDING
    )
    assert built.newest_webhook_id == 9
    assert build_history([], [], viewer_id=1, current=PENDING).newest_webhook_id == 0


def test_a_lookup_that_disagrees_with_the_newest_webhook_is_said_and_the_lookup_wins():
    built = build_history(
        [event(0, "pending", "kyc_form_submission_started", pk=1)], [], viewer_id=1, current=APPROVED
    )
    assert built.disagreement == history.Disagreement(at(0), "Pending · Form started", "Approved")


def test_the_newest_webhook_is_the_newest_by_aligns_time_not_by_arrival():
    """A retry of an old delivery that arrives last does not speak for the customer's state."""
    built = build_history(
        [event(30, "approved", pk=1), event(0, "pending", pk=2)], [], viewer_id=1, current=APPROVED
    )
    assert built.disagreement is None


@pytest.mark.parametrize(
    ("webhook_state", "current"),
    [
        (("pending", "kyc_form_submission_started"), PENDING),  # the lookup knows no sub-status
        (("approved", ""), APPROVED),
    ],
)
def test_no_disagreement_when_they_agree_as_far_as_both_know(webhook_state, current):
    built = build_history([event(0, *webhook_state)], [], viewer_id=1, current=current)
    assert built.disagreement is None


def test_no_webhooks_no_disagreement():
    assert build_history([], [], viewer_id=1, current=APPROVED).disagreement is None


def test_a_different_sub_status_is_a_disagreement_when_both_know_it():
    built = build_history(
        [event(0, "pending", "kyc_form_submission_started")], [], viewer_id=1, current=PENDING_RESUBMIT
    )
    assert built.disagreement.lookup_shows == "Pending · Resubmission required"


# --- Words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "said"),
    [
        (KycState.of("approved"), "Approved"),
        (KycState.of("rejected"), "Rejected"),
        (KycState.of("pending", "kyc_form_submission_accepted"), "Pending · Under review"),
        (KycState.of("pending", "kyc_form_resubmission_required"), "Pending · Resubmission required"),
        (KycState.of("pending", "awaiting_video_call"), "Pending · awaiting_video_call"),
        (KycState.of(""), "Not started"),
        (KycState.of(AuditEvent.KYC_STATUS_NOT_SENT), "Unknown"),
        (KycState.of("on_hold"), "on_hold"),
        # A sub-status qualifies "pending" only; the card shows none for the others either.
        (KycState.of("approved", "kyc_form_submission_started"), "Approved"),
    ],
)
def test_states_are_said_in_the_cards_badge_words(state, said):
    assert state.words == said


def test_an_unrecognised_sub_status_is_marked_so():
    assert KycState.of("pending", "awaiting_video_call").sub_status_badge.recognised is False


# --- What the page showed before it refreshed itself ---------------------------------------------


@pytest.mark.parametrize(
    ("query", "before"),
    [
        ({"was": "pending", "was_sub": "kyc_form_submission_started"}, PENDING_STARTED),
        ({"was": "pending"}, PENDING),
        ({"was": "pending", "was_sub": "<script>"}, PENDING),
        ({"was": "<script>alert(1)</script>"}, None),
        ({"was": "Pending"}, None),
        ({}, None),
    ],
)
def test_the_state_before_is_read_from_known_codes_only(query, before):
    assert history.state_before_refresh(query) == before


# --- Watching ------------------------------------------------------------------------------------


def parsed(demo_body, demo_id=GRACE, change=None):
    from customers.align.records import Customer

    body = demo_body(demo_id)
    if change:
        change(body)
    return Customer.from_api(body, customer_id=uuid.UUID(demo_id))


def test_only_a_pending_customer_is_watched(demo_body):
    assert history.watch_for(parsed(demo_body, ADA), None) is None
    assert history.watch_for(parsed(demo_body, str(DemoId.KYC_NOT_STARTED)), None) is None
    assert history.watch_for(parsed(demo_body, str(DemoId.REJECTED)), None) is None


def test_without_webhooks_the_page_looks_up_again_every_minute_for_half_an_hour(demo_body, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = False
    watch = history.watch_for(parsed(demo_body), None)
    assert (watch.mode, watch.poll_seconds, watch.stop_after_seconds) == ("fallback", 60, 1800)
    assert (
        watch.refresh_url
        == f"/customers/{GRACE}/?refresh=auto&was=pending&was_sub=kyc_form_submission_started"
    )
    assert watch.changes_url == ""


def test_with_webhooks_the_page_asks_for_events_newer_than_it_was_rendered_with(demo_body, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    built = build_history([event(0, "pending", pk=41)], [], viewer_id=1, current=PENDING)
    watch = history.watch_for(parsed(demo_body), built)
    assert (watch.mode, watch.poll_seconds, watch.after) == ("webhook", 10, 41)
    assert watch.changes_url == f"/customers/{GRACE}/kyc-changes/"
    assert watch.stop_after_seconds == 0


def test_with_webhooks_but_no_readable_history_nothing_is_watched(demo_body, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    assert history.watch_for(parsed(demo_body), None) is None


def test_an_unrecognised_sub_status_is_not_passed_along(demo_body):
    def unrecognised(body):
        body["kycs"]["sub_status"] = "awaiting_video_call"

    watch = history.watch_for(parsed(demo_body, change=unrecognised), None)
    assert watch.refresh_url.endswith("?refresh=auto&was=pending")


# --- On the card --------------------------------------------------------------------------------


def detail(client, customer_id=GRACE, query="", **headers):
    return client.get(f"/customers/{customer_id}/{query}", headers=headers)


def history_section(page: str) -> str:
    match = re.search(
        r'<section class="card-section" aria-labelledby="history-heading">(.*?)</section>', page, re.S
    )
    assert match, "no History section on the card"
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()
    return text.replace("( ", "(").replace(" )", ")")


def test_the_card_has_a_history_section_after_the_kyc_section(staff_client, serve):
    serve(GRACE)
    page = detail(staff_client).content.decode()
    assert (
        page.index('id="kyc-heading"')
        < page.index('id="history-heading"')
        < page.index('id="address-heading"')
    )
    now = timezone.localtime().strftime("%H:%M")
    # The sub-status badge follows the status badge, as in the KYC section.
    assert history_section(page) == f"History Pending Form started since {now} · seen by you"


def test_the_card_shows_what_align_pushed_and_what_colleagues_saw(staff_client, serve, django_user_model):
    smith = django_user_model.objects.create_user(username="j.smith", password="irrelevant-pass")
    now = timezone.now()
    three_hours_ago, two_hours_ago, an_hour_ago = (now - timedelta(hours=hours) for hours in (3, 2, 1))
    for moment, status in ((three_hours_ago, ""), (an_hour_ago, "pending")):
        lookup = AuditEvent.objects.create(
            user=smith, action="lookup", customer_id=GRACE, outcome="found", kyc_status=status
        )
        AuditEvent.objects.filter(pk=lookup.pk).update(occurred_at=moment)
    KycWebhookEvent.objects.create(
        delivery_key="a" * 64,
        customer_id=GRACE,
        event_created_at=two_hours_ago,
        kyc_status="pending",
        kyc_sub_status="kyc_form_resubmission_required",
    )
    serve(GRACE)  # Align now says: form started
    section = history_section(detail(staff_client).content.decode())
    today = timezone.localdate()

    def short(moment):
        local = timezone.localtime(moment)
        return f"{local:%H:%M}" if local.date() == today else f"{local.day} {local:%b %H:%M}"

    assert section == (
        f"History Align's last webhook ({short(two_hours_ago)}) said Pending · Resubmission required; "
        "this lookup shows Pending · Form started. The lookup is the current state. "
        f"Pending Form started since {short(now)} · seen by you "
        # j.smith's later "Pending" folds in: a lookup records no sub-status to tell them apart.
        f"Pending Resubmission required since {short(two_hours_ago)} · Align "
        f"Not started since {short(three_hours_ago)} · seen by j.smith"
    )


def test_a_history_that_cannot_be_read_is_said_and_the_card_still_shows(staff_client, serve, monkeypatch):
    def unreadable(*args, **kwargs):
        raise DatabaseError("no such table")

    monkeypatch.setattr(history.KycWebhookEvent.objects, "filter", unreadable)
    serve(GRACE)
    response = detail(staff_client)
    assert response.status_code == 200
    assert "The KYC history can't be shown right now." in history_section(response.content.decode())
    assert 'data-kyc-watch="fallback"' in response.content.decode()  # needs no history to watch


def test_with_webhooks_but_an_unreadable_history_the_card_is_not_watched(
    staff_client, serve, monkeypatch, settings
):
    """Without the newest event's ID, every question would look like news, and cost a lookup."""
    settings.ALIGN_WEBHOOKS_ENABLED = True

    def unreadable(*args, **kwargs):
        raise DatabaseError("no such table")

    monkeypatch.setattr(history.KycWebhookEvent.objects, "filter", unreadable)
    serve(GRACE)
    assert "data-kyc-watch" not in detail(staff_client).content.decode()


def test_a_pending_card_carries_what_the_page_watches_with_and_an_approved_one_does_not(staff_client, serve):
    serve(GRACE)
    page = detail(staff_client).content.decode()
    assert 'data-kyc-watch="fallback"' in page
    assert (
        f'data-watch-refresh="/customers/{GRACE}/?refresh=auto&amp;was=pending&amp;was_sub=kyc_form_submission_started"'
        in page
    )
    assert "Checking every 60 s" in page
    assert "data-watch-line hidden" in page
    serve(ADA)
    assert "data-kyc-watch" not in detail(staff_client, ADA).content.decode()


def test_with_webhooks_a_pending_card_asks_after_its_newest_event(staff_client, serve, settings):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    newest = KycWebhookEvent.objects.create(
        delivery_key="b" * 64, customer_id=GRACE, event_created_at=timezone.now(), kyc_status="pending"
    )
    serve(GRACE)
    page = detail(staff_client).content.decode()
    assert 'data-kyc-watch="webhook"' in page
    assert f'data-watch-changes="/customers/{GRACE}/kyc-changes/" data-watch-after="{newest.pk}"' in page
    assert "Updates by itself when Align reports a change." in page


# --- The automatic refresh ---------------------------------------------------------------------

AUTO = "?refresh=auto&was=pending&was_sub=kyc_form_submission_started"


def test_an_automatic_refresh_that_finds_no_change_answers_204_and_is_audited_as_automatic(
    staff_client, serve, htmx_headers
):
    serve(GRACE)
    response = detail(staff_client, query=AUTO, **htmx_headers)
    assert response.status_code == 204
    assert response.content == b""
    assert re.fullmatch(r"\d\d:\d\d", response[history.CHECKED_AT_HEADER])
    event = AuditEvent.objects.get()
    assert (event.automatic, event.is_refresh, event.outcome) == (True, True, "found")


def test_an_automatic_refresh_that_finds_a_change_shows_the_card_saying_what_changed(
    staff_client, serve, htmx_headers
):
    def approve(body):
        body["kycs"] = body["kycs"] | {"status": "approved", "sub_status": None}

    serve(GRACE, change=approve)
    response = detail(staff_client, query=AUTO, **htmx_headers)
    assert response.status_code == 200
    page = response.content.decode()
    now = timezone.localtime().strftime("%H:%M")
    change = re.search(r'<p class="kyc-change" data-kyc-change>(.*?)</p>', page).group(1)
    assert re.sub(r"<[^>]+>", "", change) == f"Status changed: Pending · Form started → Approved, {now}"
    assert "data-kyc-watch" not in page  # settled: nothing left to watch
    assert AuditEvent.objects.get().automatic is True


def test_a_previous_status_that_is_not_a_known_code_is_never_echoed(staff_client, serve, htmx_headers):
    serve(GRACE)
    response = detail(staff_client, query="?refresh=auto&was=%3Cscript%3Eevil", **htmx_headers)
    assert response.status_code == 200
    assert "evil" not in response.content.decode()
    assert "Status changed" not in response.content.decode()


def test_a_full_page_asked_for_as_an_automatic_refresh_is_the_whole_page(staff_client, serve):
    serve(GRACE)
    response = detail(staff_client, query=AUTO)
    assert response.status_code == 200
    assert 'id="customer-name"' in response.content.decode()


def test_staffs_refresh_is_not_automatic(staff_client, serve, htmx_headers):
    serve(GRACE)
    detail(staff_client, query="?refresh=1", **htmx_headers)
    event = AuditEvent.objects.get()
    assert (event.is_refresh, event.automatic) == (True, False)


def test_an_automatic_refresh_that_fails_says_when_it_was_tried(
    staff_client, align, customer_url, htmx_headers
):
    align.get(customer_url(GRACE), status=503)
    response = detail(staff_client, query=AUTO, **htmx_headers)
    assert response.status_code == 502
    assert history.CHECKED_AT_HEADER in response
    assert AuditEvent.objects.get().automatic is True


def test_a_second_look_still_names_the_sub_status_the_first_one_saw(staff_client, serve):
    """Issue #19, item 4: the audit row keeps the sub-status, so History does not lose it."""
    serve(GRACE)
    detail(staff_client)
    assert AuditEvent.objects.get(customer_id=GRACE).kyc_sub_status == "kyc_form_submission_started"
    serve(GRACE)
    page = detail(staff_client, query="?refresh=1").content.decode()
    now = timezone.localtime().strftime("%H:%M")
    assert history_section(page) == f"History Pending Form started since {now} · seen by you"


def test_an_old_lookup_row_without_a_sub_status_claims_none(staff_user):
    old = AuditEvent(
        user=staff_user, action=AuditEvent.Action.LOOKUP, customer_id=GRACE, kyc_status="pending"
    )
    assert KycState.of(old.kyc_status, old.kyc_sub_status) == KycState("pending", "")


def test_a_new_kyc_session_is_an_entry_of_its_own_even_in_the_same_state():
    """The link changed, so the start is said even when the customer was pending already."""
    restart = Observation(at(10), PENDING, "new KYC session, by lena", False, 2, restart=True)
    entries = fold([lookup(0, PENDING, pk=1), restart, lookup(20, PENDING, pk=3)])
    assert words(entries) == [
        ("Pending", at(10), "new KYC session, by lena"),
        ("Pending", at(0), "seen by j.smith"),
    ]
