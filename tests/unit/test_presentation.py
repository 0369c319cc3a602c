"""The words and badges staff read, per /work/shared/UI.md, decided from the parsed records."""

import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from customers.align import client
from customers.align.records import (
    Currency,
    CustomerType,
    Kyc,
    KycStatus,
    KycSubStatus,
    PaymentRail,
    RailStatus,
    StatusBreakdownRow,
)
from customers.align.standin.demo import DemoId
from customers.models import AuditEvent
from customers.services import decisions as presentation
from customers.services.decisions import (
    AUDIT_UNAVAILABLE,
    INVALID_INPUT,
    UNRECOGNISED_NOTE,
    Badge,
    breakdown_is_recognised,
    breakdown_label,
    breakdown_status_badge,
    customer_type_badge,
    describe_failure,
    kyc_summary,
    kyc_warnings,
    rails_note,
    seen_status_badge,
    web_link,
)

FLOW_LINK = "https://kyc.stand-in.example/flow/3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"


def kyc(status, sub_status=None) -> Kyc:
    return Kyc(status=status, sub_status=sub_status, kyc_flow_link=FLOW_LINK, status_breakdown=())


# --- kyc_summary: the "Words for KYC states" table ------------------------------------------------


def test_null_kycs_means_kyc_not_started():
    summary = kyc_summary(None)
    assert summary.badge == Badge("Not started", "neutral")
    assert summary.sub_status is None
    assert summary.explanation == "There is no KYC link to send the customer yet."
    assert summary.warnings == ()


def test_not_started_tells_staff_who_can_start_a_kyc_session():
    assert kyc_summary(None).next_step == (
        "Align has no KYC for this customer yet. A compliance lead can start one with "
        "Start new KYC session on this card; then send the customer its link."
    )


def test_not_started_explanation_does_not_repeat_the_next_step():
    summary = kyc_summary(None)
    assert summary.explanation not in summary.next_step
    assert "Align has no KYC" not in summary.explanation


@pytest.mark.parametrize(
    ("sub_status", "label", "explanation", "next_step"),
    [
        (
            KycSubStatus.FORM_STARTED,
            "Form started",
            "The customer has begun the KYC form but not finished it.",
            "Remind them to complete it with the KYC link.",
        ),
        (
            KycSubStatus.FORM_ACCEPTED,
            "Under review",
            "The customer completed the flow and their documents were accepted; Align is reviewing.",
            "None; wait for Align's decision.",
        ),
        (
            KycSubStatus.RESUBMISSION_REQUIRED,
            "Resubmission required",
            "Align needs more information or documents.",
            "Send the customer the same KYC link to resubmit.",
        ),
    ],
)
def test_pending_with_sub_status_reads_as_ui_words(sub_status, label, explanation, next_step):
    summary = kyc_summary(kyc(KycStatus.PENDING, sub_status))
    assert summary.badge == Badge("Pending", "pending")
    assert summary.sub_status == Badge(label, "pending")
    assert summary.explanation == explanation
    assert summary.next_step == next_step


def test_pending_without_sub_status_is_pending_with_no_detail():
    summary = kyc_summary(kyc(KycStatus.PENDING))
    assert summary.badge == Badge("Pending", "pending")
    assert summary.sub_status is None
    assert summary.explanation == "KYC is in progress; Align gave no detail."
    assert summary.next_step is None


def test_approved_is_green_with_no_next_step():
    summary = kyc_summary(kyc(KycStatus.APPROVED))
    assert summary.badge == Badge("Approved", "approved")
    assert summary.sub_status is None
    assert summary.explanation == "KYC approved."
    assert summary.next_step is None


def test_rejected_is_red_and_says_do_not_onboard():
    summary = kyc_summary(kyc(KycStatus.REJECTED))
    assert summary.badge == Badge("Rejected", "rejected")
    assert summary.sub_status is None
    assert summary.explanation == "KYC rejected."
    assert summary.next_step == "Do not onboard; escalate per policy."


def test_null_status_is_grey_unknown():
    summary = kyc_summary(kyc(None))
    assert summary.badge == Badge("Unknown", "neutral")
    assert summary.sub_status is None
    assert summary.explanation == "Align returned no overall status."
    assert summary.next_step == "Check again later; if it persists, raise it with Align."


@pytest.mark.parametrize("status", [KycStatus.APPROVED, KycStatus.REJECTED])
def test_sub_status_is_ignored_unless_pending(status):
    summary = kyc_summary(kyc(status, KycSubStatus.RESUBMISSION_REQUIRED))
    assert summary.sub_status is None
    assert summary.badge.label == status.capitalize()


def test_unrecognised_status_shows_the_raw_value_as_sent():
    summary = kyc_summary(kyc("frozen"))
    assert summary.badge == Badge("frozen", "neutral", recognised=False)
    assert summary.sub_status is None
    assert summary.explanation == UNRECOGNISED_NOTE == "Shown as sent; the dashboard may need an update."
    assert summary.next_step is None


def test_unrecognised_sub_status_shows_the_raw_value_under_pending():
    summary = kyc_summary(kyc(KycStatus.PENDING, "kyc_form_expired"))
    assert summary.badge == Badge("Pending", "pending")
    assert summary.sub_status == Badge("kyc_form_expired", "neutral", recognised=False)
    assert summary.explanation == UNRECOGNISED_NOTE
    assert summary.next_step is None


def test_recognised_badges_say_so():
    assert kyc_summary(kyc(KycStatus.APPROVED)).badge.recognised is True
    assert kyc_summary(None).badge.recognised is True


@pytest.mark.parametrize(
    "summary_kyc",
    [
        None,
        kyc(None),
        kyc(KycStatus.APPROVED),
        kyc(KycStatus.REJECTED),
        kyc("frozen"),
        *(kyc(KycStatus.PENDING, sub_status) for sub_status in [*KycSubStatus, None, "kyc_form_expired"]),
    ],
    ids=str,
)
def test_the_summarys_next_step_is_next_steps(summary_kyc):
    assert kyc_summary(summary_kyc).next_step == presentation.next_step(summary_kyc)


@pytest.mark.parametrize("sub_status", sorted(presentation.LINK_SENDING_SUB_STATUSES))
def test_next_step_follows_the_link_decision_not_a_check_of_its_own(monkeypatch, sub_status):
    withheld = presentation.LinkDecision(presentation.LinkAction.WITHHOLD, reason="withheld for this test")
    monkeypatch.setattr(presentation, "link_decision", lambda kyc: withheld)
    assert presentation.next_step(kyc(KycStatus.PENDING, sub_status)) == presentation.NO_LINK_TO_SEND


@pytest.mark.parametrize(
    ("sub_status", "badge"),
    [
        (KycSubStatus.FORM_STARTED, Badge("Form started", "pending")),
        ("kyc_form_resubmission_required", Badge("Resubmission required", "pending")),
        ("kyc_form_expired", Badge("kyc_form_expired", "neutral", recognised=False)),
    ],
)
def test_sub_status_badge_reads_a_parsed_or_a_stored_code(sub_status, badge):
    assert presentation.sub_status_badge(sub_status) == badge


# --- Customer type, breakdown rows --------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer_type", "badge"),
    [
        (CustomerType.INDIVIDUAL, Badge("Individual", "neutral")),
        (CustomerType.CORPORATE, Badge("Corporate", "neutral")),
        ("trust", Badge("trust", "neutral", recognised=False)),
    ],
)
def test_customer_type_badge(customer_type, badge):
    assert customer_type_badge(customer_type) == badge


@pytest.mark.parametrize(
    ("currency", "rail", "label"),
    [
        (Currency.USD, PaymentRail.ACH, "USD · ACH"),
        (Currency.AED, PaymentRail.UAEFTS, "AED · UAEFTS"),
        (Currency.EUR, PaymentRail.SEPA, "EUR · SEPA"),
        (Currency.USD, PaymentRail.WIRE, "USD · Wire"),
        ("gbp", PaymentRail.WIRE, "gbp · Wire"),
        (Currency.USD, "swift", "USD · swift"),
        ("gbp", "faster_payments", "gbp · faster_payments"),
    ],
)
def test_breakdown_label(currency, rail, label):
    row = StatusBreakdownRow(currency=currency, payment_rails=rail, status=RailStatus.PENDING)
    assert breakdown_label(row) == label


@pytest.mark.parametrize(
    ("currency", "rail", "recognised"),
    [
        (Currency.USD, PaymentRail.ACH, True),
        ("gbp", PaymentRail.WIRE, False),
        (Currency.USD, "swift", False),
    ],
)
def test_breakdown_is_recognised_only_with_contract_currency_and_rail(currency, rail, recognised):
    row = StatusBreakdownRow(currency=currency, payment_rails=rail, status=RailStatus.PENDING)
    assert breakdown_is_recognised(row) is recognised


@pytest.mark.parametrize(
    ("status", "badge"),
    [
        (RailStatus.PENDING, Badge("Pending", "pending")),
        (RailStatus.APPROVED, Badge("Approved", "approved")),
        ("rejected", Badge("rejected", "neutral", recognised=False)),
    ],
)
def test_breakdown_status_badge(status, badge):
    assert breakdown_status_badge(status) == badge


# --- rails_note: when the overall status and the breakdown rows disagree -------------------------

USD_ACH = (Currency.USD, PaymentRail.ACH)
USD_WIRE = (Currency.USD, PaymentRail.WIRE)
EUR_SEPA = (Currency.EUR, PaymentRail.SEPA)
AED_UAEFTS = (Currency.AED, PaymentRail.UAEFTS)
PENDING, APPROVED = RailStatus.PENDING, RailStatus.APPROVED


def kyc_with_rails(status, *rails) -> Kyc:
    """A KYC with breakdown rows given as ((currency, rail), rail status) pairs."""
    rows = tuple(
        StatusBreakdownRow(currency=currency, payment_rails=rail, status=rail_status)
        for (currency, rail), rail_status in rails
    )
    return Kyc(status=status, sub_status=None, kyc_flow_link=FLOW_LINK, status_breakdown=rows)


def test_approved_with_one_rail_pending_says_that_rail_cannot_be_used_yet():
    note = rails_note(kyc_with_rails(KycStatus.APPROVED, (AED_UAEFTS, APPROVED), (USD_WIRE, PENDING)))
    assert note == "Approved overall; USD · Wire is still pending, so that rail can't be used yet."


def test_approved_with_several_rails_pending_names_them_all_in_the_plural():
    note = rails_note(
        kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, PENDING), (USD_ACH, APPROVED), (EUR_SEPA, PENDING))
    )
    assert note == (
        "Approved overall; USD · Wire and EUR · SEPA are still pending, so those rails can't be used yet."
    )


def test_three_rails_are_listed_with_commas_and_a_final_and():
    note = rails_note(
        kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, PENDING), (USD_ACH, PENDING), (EUR_SEPA, PENDING))
    )
    assert note.startswith("Approved overall; USD · Wire, USD · ACH and EUR · SEPA are still pending")


def test_a_rail_sent_twice_is_named_once():
    note = rails_note(kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, PENDING), (USD_WIRE, PENDING)))
    assert note == "Approved overall; USD · Wire is still pending, so that rail can't be used yet."


def test_approved_with_a_rail_status_the_dashboard_does_not_know_says_to_check_before_using_it():
    kyc = kyc_with_rails(KycStatus.APPROVED, (USD_ACH, APPROVED), (USD_WIRE, "suspended"))
    assert kyc_warnings(kyc) == (
        "New to the dashboard, shown as sent: the status “suspended” of USD · Wire. "
        "Check with Align before relying on it.",
    )
    assert rails_note(kyc) is None  # said once, by the warning above


def test_approved_with_pending_and_unrecognised_rails_says_both():
    kyc = kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, PENDING), (EUR_SEPA, "suspended"))
    assert kyc_warnings(kyc) == (
        "New to the dashboard, shown as sent: the status “suspended” of EUR · SEPA. "
        "Check with Align before relying on it.",
        "Approved overall; USD · Wire is still pending, so that rail can't be used yet.",
    )


def test_unrecognised_rail_and_currency_codes_are_named_as_sent():
    note = rails_note(kyc_with_rails(KycStatus.APPROVED, (("gbp", "faster_payments"), PENDING)))
    assert note.startswith("Approved overall; gbp · faster_payments is still pending")


def test_rejected_with_a_pending_rail_says_not_to_use_any_rail():
    note = rails_note(kyc_with_rails(KycStatus.REJECTED, (EUR_SEPA, PENDING)))
    assert note == "Rejected overall: do not use any rail, even though EUR · SEPA still shows Pending."


def test_rejected_names_every_row_that_could_read_as_hope():
    note = rails_note(
        kyc_with_rails(
            KycStatus.REJECTED,
            (EUR_SEPA, PENDING),
            (USD_ACH, APPROVED),
            (USD_WIRE, PENDING),
            (AED_UAEFTS, "on_hold"),
        )
    )
    assert note == (
        "Rejected overall: do not use any rail, even though EUR · SEPA and USD · Wire still show Pending, "
        "USD · ACH shows Approved and AED · UAEFTS shows “on_hold”."
    )


def test_pending_with_an_approved_rail_says_no_rail_is_usable_until_kyc_is_approved():
    note = rails_note(kyc_with_rails(KycStatus.PENDING, (USD_ACH, APPROVED), (USD_WIRE, PENDING)))
    assert note == (
        "Pending overall; USD · ACH already shows Approved, "
        "but don't treat any rail as usable until KYC is approved overall."
    )


def test_pending_with_several_approved_rails_uses_the_plural():
    note = rails_note(kyc_with_rails(KycStatus.PENDING, (USD_ACH, APPROVED), (USD_WIRE, APPROVED)))
    assert note.startswith("Pending overall; USD · ACH and USD · Wire already show Approved, but")


@pytest.mark.parametrize("status", [None, "frozen"], ids=["status-null", "unrecognised-status"])
def test_approved_rail_under_an_overall_status_the_dashboard_cannot_read_is_not_usable(status):
    note = rails_note(kyc_with_rails(status, (USD_ACH, APPROVED), (USD_WIRE, PENDING)))
    assert note == (
        "Without an overall status the dashboard can read, don't treat USD · ACH as usable, "
        "even though it shows Approved."
    )


@pytest.mark.parametrize(
    ("status", "rails"),
    [
        (KycStatus.APPROVED, [(USD_ACH, APPROVED), (EUR_SEPA, APPROVED)]),
        (KycStatus.PENDING, [(USD_ACH, PENDING), (USD_WIRE, PENDING)]),
        (KycStatus.PENDING, [(USD_ACH, "suspended")]),
        (None, [(USD_ACH, PENDING)]),
        ("frozen", [(USD_ACH, "suspended")]),
        (KycStatus.APPROVED, []),
        (KycStatus.REJECTED, []),
        (KycStatus.PENDING, []),
    ],
    ids=[
        "approved-all-approved",
        "pending-all-pending",
        "pending-unrecognised-rail-status",
        "status-null-nothing-approved",
        "unrecognised-everything",
        "approved-no-rows",
        "rejected-no-rows",
        "pending-no-rows",
    ],
)
def test_no_rails_note_when_the_rows_do_not_disagree_with_the_overall_status(status, rails):
    assert rails_note(kyc_with_rails(status, *rails)) is None


def test_kyc_summary_carries_the_rails_note_among_its_warnings():
    kyc = kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, PENDING))
    summary = kyc_summary(kyc)
    assert summary.warnings == (rails_note(kyc),)
    assert summary.explanation == "KYC approved."


def test_kyc_summary_without_disagreement_has_no_warnings():
    assert kyc_summary(kyc_with_rails(KycStatus.APPROVED, (USD_WIRE, APPROVED))).warnings == ()


# --- kyc_warnings: values new to the dashboard, then the rails note -------------------------------


def test_every_value_new_to_the_dashboard_is_named_once_in_the_order_it_was_sent():
    rows = (
        StatusBreakdownRow("gbp", PaymentRail.WIRE, RailStatus.PENDING),
        StatusBreakdownRow(Currency.USD, "swift", "suspended"),
        StatusBreakdownRow("gbp", PaymentRail.ACH, RailStatus.PENDING),
    )
    kyc = Kyc(
        status=KycStatus.PENDING,
        sub_status="kyc_form_expired",
        kyc_flow_link=FLOW_LINK,
        status_breakdown=rows,
    )
    assert kyc_warnings(kyc) == (
        "New to the dashboard, shown as sent: the sub-status “kyc_form_expired”, the currency “gbp”, "
        "the rail “swift” and the status “suspended” of USD · swift. "
        "Check with Align before relying on them.",
    )


def test_the_unrecognised_values_demo_warns_of_its_status_and_rail_and_of_its_approved_rail():
    rows = (
        StatusBreakdownRow(Currency.AED, PaymentRail.UAEFTS, RailStatus.APPROVED),
        StatusBreakdownRow(Currency.USD, "swift", RailStatus.PENDING),
    )
    kyc = Kyc(status="on_hold", sub_status=None, kyc_flow_link=FLOW_LINK, status_breakdown=rows)
    assert kyc_warnings(kyc) == (
        "New to the dashboard, shown as sent: the KYC status “on_hold” and the rail “swift”. "
        "Check with Align before relying on them.",
        "Without an overall status the dashboard can read, don't treat AED · UAEFTS as usable, "
        "even though it shows Approved.",
    )


@pytest.mark.parametrize("status", [KycStatus.APPROVED, KycStatus.REJECTED, None])
def test_a_sub_status_is_not_named_unless_pending_as_the_card_shows_it_only_then(status):
    assert kyc_warnings(kyc(status, "kyc_form_expired")) == ()


@pytest.mark.parametrize(
    "summary_kyc",
    [None, kyc(KycStatus.APPROVED), kyc(KycStatus.PENDING, KycSubStatus.FORM_STARTED), kyc(None)],
    ids=["no-kyc", "approved", "pending", "status-null"],
)
def test_no_warnings_when_everything_is_known_and_agrees(summary_kyc):
    assert kyc_warnings(summary_kyc) == ()


# --- web_link -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        FLOW_LINK,
        "http://kyc.example/flow/abc",
        "HTTPS://KYC.EXAMPLE/flow",
        "https://kyc.example:8443/flow?token=abc#step-2",
    ],
)
def test_web_link_passes_http_and_https_with_a_host(link):
    assert web_link(link) == link


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://x",
        "file:///etc/passwd",
        "//example.com/x",
        "/flow/abc",
        "kyc.example/flow",
        "https://",
        "https:///flow",
        "http:example.com",
        "https://[::1",
        "",
        None,
        "https://kyc.example/flow abc",
        "https://kyc.example/flow\nabc",
        "https://kyc.example/flow\tabc",
        "https://kyc.example/flow\r",
        "https://kyc.example/\x00",
    ],
    ids=[
        "javascript",
        "javascript-mixed-case",
        "javascript-leading-space",
        "data",
        "vbscript",
        "ftp",
        "file",
        "scheme-relative",
        "path-only",
        "no-scheme",
        "https-no-host",
        "https-empty-host",
        "http-no-slashes",
        "malformed-ipv6-host",
        "empty",
        "none",
        "space",
        "newline",
        "tab",
        "carriage-return",
        "nul",
    ],
)
def test_web_link_rejects_anything_else(link):
    assert web_link(link) is None


# --- describe_failure: the "Errors staff can see" table -------------------------------------------

CONFIGURATION_PROBLEM = "This is a configuration problem: contact an administrator."

FAILURES = [
    (client.CustomerNotFound, "No customer with this ID", 404),
    (client.ApiKeyRejected, "The dashboard's API key was rejected", 502),
    (client.AlignNotConfigured, "The dashboard has no API key", 503),
    (client.RateLimited, "Align is rate-limiting us", 503),
    (client.UpstreamTimeout, "Align did not answer in time", 504),
    (client.UpstreamError, "Align is unavailable", 502),
    (client.UpstreamUnreachable, "Align is unavailable", 503),
    (client.InvalidResponse, "Unexpected response from Align", 502),
    (client.RequestRefused, "Align refused to start a new KYC session", 502),
]


def test_every_align_error_class_has_a_row_in_this_table():
    defined = {
        member
        for _, member in inspect.getmembers(client, inspect.isclass)
        if issubclass(member, client.AlignError) and member is not client.AlignError
    }
    assert defined == {error_class for error_class, _, _ in FAILURES}


@pytest.mark.parametrize(("error_class", "title", "status"), FAILURES)
def test_describe_failure_gives_the_ui_title_and_status(error_class, title, status):
    failure = describe_failure(error_class("detail for the log"))
    assert failure.title == title
    assert failure.status == status


@pytest.mark.parametrize(
    ("error_class", "sentence"),
    [
        (
            client.CustomerNotFound,
            "Check the ID; it may belong to the other environment (sandbox vs production).",
        ),
        (client.ApiKeyRejected, CONFIGURATION_PROBLEM),
        (client.AlignNotConfigured, CONFIGURATION_PROBLEM),
        (client.UpstreamTimeout, "Try again; if it persists, Align may be degraded."),
        (client.UpstreamError, "Try again shortly."),
        (client.UpstreamUnreachable, "Try again shortly."),
        (client.InvalidResponse, "The customer could not be shown safely; the event was logged."),
    ],
)
def test_describe_failure_gives_the_ui_sentence(error_class, sentence):
    assert describe_failure(error_class("detail for the log")).sentence == sentence


def test_describe_failure_never_shows_the_error_detail():
    failure = describe_failure(client.InvalidResponse("body does not fit the contract: kycs.status"))
    assert "kycs.status" not in failure.title + failure.sentence


def test_bare_align_error_reads_as_an_unexpected_response():
    failure = describe_failure(client.AlignError("something new"))
    assert failure.title == "Unexpected response from Align"
    assert failure.status == 502


@pytest.mark.parametrize(
    ("retry_after", "sentence"),
    [
        (30, "Align asked us to wait 30 seconds."),
        (1, "Align asked us to wait 1 second."),
        (119, "Align asked us to wait 119 seconds."),
        (120, "Align asked us to wait about 2 minutes."),
        (600, "Align asked us to wait about 10 minutes."),
        (None, "Wait a minute before trying again."),
        (0, "You can try again now."),
    ],
)
def test_rate_limited_sentence_says_how_long_align_asked_us_to_wait(retry_after, sentence):
    failure = describe_failure(client.RateLimited("Align answered 429", retry_after=retry_after))
    assert failure.title == "Align is rate-limiting us"
    assert failure.sentence == sentence
    assert failure.status == 503


def test_invalid_input_card_only_says_nothing_happened():
    """The reason is said once, under the field; the card must not repeat it."""
    assert INVALID_INPUT.title == "Nothing was looked up"
    assert INVALID_INPUT.sentence == ""
    assert INVALID_INPUT.status == 400
    assert INVALID_INPUT.kind == "check"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client.CustomerNotFound("x"), "check"),
        (client.UpstreamTimeout("x"), "transient"),
        (client.UpstreamError("x"), "transient"),
        (client.UpstreamUnreachable("x"), "transient"),
        (client.RateLimited("x", retry_after=3), "transient"),
        (client.ApiKeyRejected("x"), "broken"),
        (client.AlignNotConfigured("x"), "broken"),
        (client.InvalidResponse("x"), "broken"),
    ],
)
def test_failure_kind_tells_whether_retrying_can_help(error, kind):
    assert describe_failure(error).kind == kind


# --- Past lookups and the audit log ---------------------------------------------------------------

Outcome = AuditEvent.Outcome


@pytest.mark.parametrize(
    ("kyc_status", "badge"),
    [
        ("approved", Badge("Approved", "approved")),
        ("pending", Badge("Pending", "pending")),
        ("rejected", Badge("Rejected", "rejected")),
        ("", Badge("Not started", "neutral")),
        (AuditEvent.KYC_STATUS_NOT_SENT, Badge("Unknown", "neutral")),
    ],
)
def test_seen_status_of_a_found_customer(kyc_status, badge):
    assert seen_status_badge(Outcome.FOUND, kyc_status) == badge


def test_seen_status_without_kyc_uses_the_words_of_the_customer_card():
    assert seen_status_badge(Outcome.FOUND, "") == kyc_summary(None).badge
    assert seen_status_badge(Outcome.FOUND, AuditEvent.KYC_STATUS_NOT_SENT) == kyc_summary(kyc(None)).badge


@pytest.mark.parametrize("status", [KycStatus.APPROVED, KycStatus.PENDING, KycStatus.REJECTED])
def test_seen_status_uses_the_words_and_colour_of_the_customer_card(status):
    assert seen_status_badge(Outcome.FOUND, str(status)) == kyc_summary(kyc(status)).badge


def test_seen_status_that_the_dashboard_does_not_know_is_shown_as_recorded_and_marked():
    assert seen_status_badge(Outcome.FOUND, "approved_later") == Badge(
        "approved_later", "neutral", recognised=False
    )


@pytest.mark.parametrize(
    ("stored_kyc", "code"),
    [
        (None, ""),
        (kyc(None), AuditEvent.KYC_STATUS_NOT_SENT),
        (kyc(KycStatus.APPROVED), "approved"),
        (kyc("on_hold"), "on_hold"),
        (kyc("x" * 50), "x" * 40),
        (client.KycSession(status=KycStatus.PENDING, kyc_flow_link=FLOW_LINK), "pending"),
        (client.KycSession(status=None, kyc_flow_link=FLOW_LINK), AuditEvent.KYC_STATUS_NOT_SENT),
    ],
    ids=["no-kyc", "status-null", "approved", "unrecognised", "cut-to-the-column", "session", "session-null"],
)
def test_stored_status_code_is_what_the_audit_trail_and_webhook_events_keep(stored_kyc, code):
    assert presentation.stored_status_code(stored_kyc) == code


@pytest.mark.parametrize(
    "stored_kyc", [None, kyc(None), kyc(KycStatus.APPROVED), kyc(KycStatus.REJECTED), kyc("on_hold")], ids=str
)
def test_a_stored_status_code_reads_back_as_the_cards_badge(stored_kyc):
    code = presentation.stored_status_code(stored_kyc)
    assert seen_status_badge(Outcome.FOUND, code) == kyc_summary(stored_kyc).badge


@pytest.mark.parametrize(
    ("outcome", "badge"),
    [
        (Outcome.NOT_FOUND, Badge("Not found", "neutral")),
        (Outcome.STARTED, Badge("Not recorded", "neutral")),
        (Outcome.TIMEOUT, Badge("Lookup failed", "neutral")),
        (Outcome.KEY_REJECTED, Badge("Lookup failed", "neutral")),
        (Outcome.UNREACHABLE, Badge("Lookup failed", "neutral")),
    ],
)
def test_seen_status_of_a_lookup_that_found_nobody(outcome, badge):
    assert seen_status_badge(outcome, "") == badge


def test_seen_status_ignores_a_kyc_status_on_anything_but_found():
    assert seen_status_badge(Outcome.NOT_FOUND, "approved") == Badge("Not found", "neutral")
    assert seen_status_badge(Outcome.STARTED, "approved") == Badge("Not recorded", "neutral")


def test_audit_unavailable_is_a_transient_503_that_says_nothing_was_fetched():
    assert AUDIT_UNAVAILABLE.status == 503
    assert AUDIT_UNAVAILABLE.kind == "transient"
    assert AUDIT_UNAVAILABLE.retry_after is None
    assert "audit log can't be written" in AUDIT_UNAVAILABLE.title
    assert "Nothing was fetched from Align" in AUDIT_UNAVAILABLE.sentence


# --- The KYC link: what staff may do with it, and who already copied it -----------------------

OFFER, WARN, WITHHOLD = (
    presentation.LinkAction.OFFER,
    presentation.LinkAction.OFFER_WITH_WARNING,
    presentation.LinkAction.WITHHOLD,
)


@pytest.mark.parametrize(
    "sub_status",
    [
        KycSubStatus.FORM_STARTED,
        KycSubStatus.FORM_ACCEPTED,
        KycSubStatus.RESUBMISSION_REQUIRED,
        None,
        "kyc_form_new_step",
    ],
)
def test_pending_kyc_offers_the_link_as_the_primary_action(sub_status):
    decision = presentation.link_decision(kyc(KycStatus.PENDING, sub_status))
    assert (decision.action, decision.link, decision.handed_out) == (OFFER, FLOW_LINK, FLOW_LINK)
    assert decision.primary is True
    assert (decision.reason, decision.note) == ("", "")


def test_approved_kyc_offers_the_link_quietly_and_says_there_is_nothing_to_send():
    decision = presentation.link_decision(kyc(KycStatus.APPROVED))
    assert (decision.action, decision.handed_out, decision.primary) == (OFFER, FLOW_LINK, False)
    assert decision.note == "KYC is approved; there is normally nothing to send."
    assert decision.reason == ""


def test_rejected_kyc_withholds_the_link_and_keeps_it_for_the_cards_disclosure_only():
    decision = presentation.link_decision(kyc(KycStatus.REJECTED))
    assert decision.action == WITHHOLD
    assert decision.handed_out == ""
    assert decision.link == FLOW_LINK
    assert decision.reason == "Hidden: KYC rejected. Open the customer."
    assert decision.note == (
        "KYC was rejected: do not onboard. Send this link only if compliance policy says so."
    )


@pytest.mark.parametrize(
    ("status", "warning"),
    [
        (None, "Align sent no overall KYC status: check it before sending the link."),
        ("suspended", "This KYC status is new to the dashboard: check it before sending the link."),
    ],
)
def test_a_missing_or_unrecognised_status_offers_the_link_with_a_warning_to_check_first(status, warning):
    decision = presentation.link_decision(kyc(status))
    assert (decision.action, decision.handed_out, decision.primary) == (WARN, FLOW_LINK, False)
    assert decision.reason == decision.note == warning


@pytest.mark.parametrize("status", [KycStatus.PENDING, KycStatus.APPROVED, KycStatus.REJECTED, None, "x"])
@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("", "Align sent no KYC link"),
        ("javascript:alert(1)", "Not a web link: open the customer"),
        ("https://kyc.example\u202e/flow", "Not a web link: open the customer"),
    ],
)
def test_a_missing_or_unsafe_link_is_withheld_whatever_the_status(status, link, reason):
    decision = presentation.link_decision(replace(kyc(status), kyc_flow_link=link))
    assert (decision.action, decision.link, decision.handed_out) == (WITHHOLD, None, "")
    assert decision.reason == reason
    assert decision.note


def test_without_kyc_there_is_no_link_to_hand_out():
    decision = presentation.link_decision(None)
    assert (decision.action, decision.link, decision.reason) == (WITHHOLD, None, "No KYC link yet")


@pytest.mark.parametrize(
    ("status", "link", "offered"),
    [
        (KycStatus.PENDING, FLOW_LINK, False),
        (KycStatus.APPROVED, FLOW_LINK, False),
        (KycStatus.REJECTED, FLOW_LINK, True),
        (KycStatus.PENDING, "", True),
        (KycStatus.PENDING, "javascript:alert(1)", True),
        (None, FLOW_LINK, False),
    ],
)
def test_a_new_kyc_session_is_offered_when_there_is_nothing_to_send_or_after_a_rejection(
    status, link, offered
):
    assert presentation.offers_new_kyc_session(replace(kyc(status), kyc_flow_link=link)) is offered
    assert presentation.offers_new_kyc_session(None) is True


COPIED_AT = datetime(2026, 11, 24, 9, 14, tzinfo=UTC)


def copy_event(username: str, user_id: int, occurred_at: datetime = COPIED_AT) -> AuditEvent:
    user = User(pk=user_id, username=username)
    return AuditEvent(user=user, action=AuditEvent.Action.LINK_COPIED, occurred_at=occurred_at)


def test_link_copies_name_who_copied_it_and_when():
    seen = presentation.describe_link_copies(
        [copy_event("j.smith", 7)], viewer_id=1, now=COPIED_AT + timedelta(hours=3)
    )
    assert (seen.last.by, seen.last.when) == ("j.smith", "at 09:14 today")


def test_link_copies_say_you_for_the_person_reading_the_card():
    seen = presentation.describe_link_copies([copy_event("jane", 1)], viewer_id=1, now=COPIED_AT)
    assert seen.last.by == "you"


@pytest.mark.parametrize(
    ("now", "when"),
    [
        (datetime(2026, 11, 25, 8, 0, tzinfo=UTC), "on 24 Nov at 09:14"),
        (datetime(2027, 1, 2, 8, 0, tzinfo=UTC), "on 24 Nov 2026 at 09:14"),
    ],
)
def test_link_copies_before_today_give_the_date(now, when):
    seen = presentation.describe_link_copies([copy_event("j.smith", 7)], viewer_id=1, now=now)
    assert seen.last.when == when


def test_link_copy_times_are_in_the_dashboards_time_zone():
    with timezone.override("Asia/Dubai"):
        seen = presentation.describe_link_copies(
            [copy_event("j.smith", 7)], viewer_id=1, now=COPIED_AT + timedelta(minutes=5)
        )
    assert seen.last.when == "at 13:14 today"


@pytest.mark.parametrize(
    ("elapsed", "warning"),
    [
        (timedelta(seconds=30), "Copied less than a minute ago — check before sending it again."),
        (timedelta(minutes=1), "Copied 1 minute ago — check before sending it again."),
        (timedelta(minutes=12, seconds=40), "Copied 12 minutes ago — check before sending it again."),
        (timedelta(minutes=59, seconds=59), "Copied 59 minutes ago — check before sending it again."),
        (timedelta(hours=1), None),
        (timedelta(days=3), None),
    ],
)
def test_a_copy_in_the_last_hour_comes_with_a_warning(elapsed, warning):
    seen = presentation.describe_link_copies([copy_event("j.smith", 7)], viewer_id=1, now=COPIED_AT + elapsed)
    assert seen.recent_warning == warning


def test_only_the_newest_copy_decides_the_warning():
    events = [copy_event("j.smith", 7), copy_event("olga", 8, COPIED_AT - timedelta(minutes=5))]
    seen = presentation.describe_link_copies(events, viewer_id=1, now=COPIED_AT + timedelta(hours=2))
    assert seen.recent_warning is None
    assert [copy.by for copy in seen.copies] == ["j.smith", "olga"]


def test_no_copies_means_no_last_copy_and_no_warning():
    seen = presentation.describe_link_copies([], viewer_id=1, now=COPIED_AT)
    assert seen.last is None
    assert seen.recent_warning is None


def test_unreadable_link_copies_stay_unreadable():
    assert presentation.describe_link_copies(None, viewer_id=1, now=COPIED_AT) is None


# --- web_link: printable ASCII only (issue #10, finding 7) ----------------------------------------

BIDI_AND_INVISIBLE_LINKS = {
    "right-to-left-override": "https://kyc.example.test/flow/\u202efdp.exe",
    "zero-width-space": "https://kyc.example.test/flow/\u200babc",
    "left-to-right-isolate": "https://kyc.example.test/flow/\u2066abc\u2069",
    "arabic-letter-mark": "https://kyc.example.test/flow/\u061cabc",
    "idn-host": "https://b\u00fccher.example/flow/abc",
    "full-width-solidus": "https://kyc.example.test\uff0fflow",
    "no-break-space": "https://kyc.example.test/flow/\u00a0abc",
    "soft-hyphen": "https://kyc.exa\u00admple.test/flow",
    "byte-order-mark": "\ufeffhttps://kyc.example.test/flow",
    "delete": "https://kyc.example.test/flow\x7f",
    "escape": "https://kyc.example.test/flow\x1b[0m",
    "trailing-space": "https://kyc.example.test/flow ",
}


@pytest.mark.parametrize("link", BIDI_AND_INVISIBLE_LINKS.values(), ids=BIDI_AND_INVISIBLE_LINKS.keys())
def test_web_link_refuses_anything_outside_printable_ascii(link):
    assert web_link(link) is None


@pytest.mark.parametrize(
    "link",
    [
        "https://kyc.example.test/flow/%E2%80%AEfdp.exe",
        "https://xn--bcher-kva.example/flow/abc",
        "https://kyc.example.test/flow?name=J%C3%BCrgen&next=%2Fdone#step-2",
        "https://kyc.example.test/~ada/[draft]/{id}|x^y`z",
    ],
    ids=["percent-encoded-bidi", "punycode-host", "percent-encoded-query", "every-printable-punctuation"],
)
def test_web_link_keeps_percent_encoded_and_other_printable_ascii_links(link):
    assert web_link(link) == link


def test_inert_link_text_writes_bidi_and_invisible_characters_as_escapes():
    assert (
        presentation.inert_link_text("https://kyc.example.test/flow/\u202efdp.exe\u200b\u2066\u061c")
        == "https://kyc.example.test/flow/\\u202efdp.exe\\u200b\\u2066\\u061c"
    )


def test_inert_link_text_escapes_controls_and_characters_beyond_the_basic_plane():
    assert presentation.inert_link_text("a\nb\x7f\U0001f600") == "a\\u000ab\\u007f\\U0001f600"


def test_inert_link_text_leaves_printable_ascii_and_spaces_as_they_are():
    text = "javascript:alert('x') <b>&amp;</b> ~"
    assert presentation.inert_link_text(text) == text


@pytest.mark.parametrize(
    "link",
    ["https://kyc.example.test@evil.example/flow", "https://user:pass@kyc.example.test/flow"],
)
def test_web_link_refuses_a_user_name_before_the_host(link):
    """The browser goes to the host after the "@", not to the one staff read first."""
    assert web_link(link) is None


@pytest.mark.parametrize("sub_status", [KycSubStatus.FORM_STARTED, KycSubStatus.RESUBMISSION_REQUIRED])
@pytest.mark.parametrize("link", [None, "", "javascript:alert(1)", "https://kyc.example\u202e/flow"])
def test_next_step_never_says_to_send_a_link_that_cannot_be_sent(sub_status, link):
    summary = kyc_summary(replace(kyc(KycStatus.PENDING, sub_status), kyc_flow_link=link))
    assert summary.next_step.startswith("Align sent no KYC link that can be sent")
    assert "A compliance lead can start a new KYC session on this card" in summary.next_step


def test_under_review_without_a_link_still_waits_for_align():
    summary = kyc_summary(replace(kyc(KycStatus.PENDING, KycSubStatus.FORM_ACCEPTED), kyc_flow_link=None))
    assert summary.next_step == "None; wait for Align's decision."


@pytest.mark.parametrize(
    ("status", "warning"),
    [
        (KycStatus.PENDING, "Copied 5 minutes ago — check before sending it again."),
        (None, "Copied 5 minutes ago — check before sending it again."),
        (KycStatus.APPROVED, "Copied 5 minutes ago; KYC is approved now, so there is nothing more to send."),
        (KycStatus.REJECTED, "Copied 5 minutes ago; KYC is rejected now: don't send it again."),
    ],
)
def test_a_recent_copy_is_worded_for_the_state_the_customer_is_in_now(status, warning):
    """Issue #19, item 18: "check before sending it again" stayed after the customer was approved."""
    seen = presentation.describe_link_copies(
        [copy_event("j.smith", 7)], viewer_id=1, now=COPIED_AT + timedelta(minutes=5), kyc=kyc(status)
    )
    assert seen.recent_warning == warning


@pytest.mark.django_db
def test_the_card_words_a_recent_copy_for_the_customer_it_shows(staff_client, serve, htmx_headers):
    serve(DemoId.INDIVIDUAL_APPROVED)
    staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/")
    staff_client.post(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/link-copied/")
    serve(DemoId.INDIVIDUAL_APPROVED)
    card = staff_client.get(f"/customers/{DemoId.INDIVIDUAL_APPROVED}/", headers=htmx_headers)
    assert b"KYC is approved now, so there is nothing more to send." in card.content
    assert b"check before sending it again" not in card.content
