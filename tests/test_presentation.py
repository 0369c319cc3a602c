"""The words and badges staff read, per /work/shared/UI.md, decided from the parsed records."""

import inspect

import pytest

from customers import client
from customers.models import AuditEvent
from customers.presentation import (
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
    seen_status_badge,
    web_link,
)
from customers.records import (
    Currency,
    CustomerType,
    Kyc,
    KycStatus,
    KycSubStatus,
    PaymentRail,
    RailStatus,
    StatusBreakdownRow,
)

FLOW_LINK = "https://kyc.stand-in.example/flow/3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91"


def kyc(status, sub_status=None) -> Kyc:
    return Kyc(status=status, sub_status=sub_status, kyc_flow_link=FLOW_LINK, status_breakdown=())


# --- kyc_summary: the "Words for KYC states" table ------------------------------------------------


def test_null_kycs_means_kyc_not_started():
    summary = kyc_summary(None)
    assert summary.badge == Badge("Not started", "neutral")
    assert summary.sub_status is None
    assert summary.explanation == "No KYC on file yet."
    assert summary.next_step is None


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
        (30, "Try again in 30 seconds."),
        (1, "Try again in 1 second."),
        (119, "Try again in 119 seconds."),
        (120, "Try again in about 2 minutes."),
        (600, "Try again in about 10 minutes."),
        (None, "Try again in a minute."),
        (0, "Try again now."),
    ],
)
def test_rate_limited_sentence_says_when_to_try_again(retry_after, sentence):
    failure = describe_failure(client.RateLimited("Align answered 429", retry_after=retry_after))
    assert failure.title == "Align is rate-limiting us"
    assert failure.sentence == sentence
    assert failure.status == 503


def test_invalid_input_failure():
    assert INVALID_INPUT.title == "Not a customer ID"
    assert INVALID_INPUT.sentence.startswith("Paste the customer's UUID, e.g. 3f2a")
    assert INVALID_INPUT.sentence.endswith("; nothing was looked up.")
    assert INVALID_INPUT.status == 400


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
