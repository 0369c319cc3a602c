"""Every demo customer, through every place that shows it, against one table (issue #18, point 1).

customers/services/decisions.py decides once what staff may do with a KYC link and which warnings
they read; the card, a bulk row, the bulk CSV, the e-mail results, History and the admin only show
those decisions. Each output is read here as staff would read it (rendered HTML, the CSV record)
and held to the same expectation, so two places can no longer disagree about one customer.
"""

import html
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone
from responses import matchers

from customers.align.records import Customer
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId
from customers.align.standin.webhooks import kyc_updated_envelope, sign
from customers.services import decisions
from customers.services.bulk import export as bulk_export
from customers.services.bulk import rows as bulk_rows
from customers.templatetags.kyc import badge

pytestmark = pytest.mark.django_db

OFFER, WARN, WITHHOLD = "offer", "offer_with_warning", "withhold"
NO_STATUS = "Align sent no overall KYC status: check it before sending the link."
NEW_STATUS = "This KYC status is new to the dashboard: check it before sending the link."

# What staff may do with each demo's link, and the words a list says in its place.
LINKS: dict[str, tuple[str, str]] = {
    DemoId.INDIVIDUAL_APPROVED: (OFFER, ""),
    DemoId.CORPORATE_APPROVED: (OFFER, ""),
    DemoId.FORM_STARTED: (OFFER, ""),
    DemoId.UNDER_REVIEW: (OFFER, ""),
    DemoId.RESUBMISSION_REQUIRED: (OFFER, ""),
    DemoId.REJECTED: (WITHHOLD, "Hidden: KYC rejected. Open the customer."),
    DemoId.KYC_NOT_STARTED: (WITHHOLD, "No KYC link yet"),
    DemoId.STATUS_NOT_SENT: (WARN, NO_STATUS),
    DemoId.UNRECOGNISED_VALUES: (WARN, NEW_STATUS),
    DemoId.NO_KYC_LINK: (WITHHOLD, "Align sent no KYC link"),
    DemoId.NON_WEB_LINK: (WITHHOLD, "Not a web link: open the customer"),
}
# How many warnings each demo carries: the pending rail under an approved customer, the pending
# rail under a rejected one, and the unrecognised status and rail with their approved rail.
WARNING_COUNTS = {DemoId.CORPORATE_APPROVED: 1, DemoId.REJECTED: 1, DemoId.UNRECOGNISED_VALUES: 2}
DEMO_IDS = [DemoId(demo_id) for demo_id in DEMO_CUSTOMERS]
SEARCHED = "several@example.com"


def test_the_table_names_every_demo_customer():
    assert set(LINKS) == set(DEMO_CUSTOMERS)


def parsed(demo_id: str) -> Customer:
    return Customer.from_api(DEMO_CUSTOMERS[demo_id], customer_id=uuid.UUID(demo_id))


def text(markup: str) -> str:
    """What a reader sees of some HTML: no tags, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def texts(pattern: str, markup: str) -> list[str]:
    return [text(found) for found in re.findall(pattern, markup, re.S)]


def action_of(offered: bool, warning: str) -> str:
    if not offered:
        return WITHHOLD
    return WARN if warning else OFFER


# --- How each output reads ------------------------------------------------------------------


def card_page(staff_client, serve, demo_id) -> str:
    serve(demo_id)
    response = staff_client.get(f"/customers/{demo_id}/")
    assert response.status_code == 200
    return response.content.decode()


def card_reading(page: str, demo_id: str) -> tuple[str, str, list[str]]:
    """The card's link (offered plainly or not, and the warning beside it) and its warnings."""
    section = re.search(
        r'<section class="card-section" aria-labelledby="kyc-heading">.*?</section>', page, re.S
    )
    block = re.search(
        r'<div class="kyc-link">.*?<div id="link-copies"|<div class="kyc-link">.*?</div>', section[0], re.S
    )
    plain = re.sub(r"<details.*?</details>", "", block[0], flags=re.S) if block else ""
    offered = ">Copy link</button>" in plain
    beside = texts(r'<p class="kyc-link-note[^"]*">(.*?)</p>', plain)
    _, expected_words = LINKS[demo_id]
    warning = expected_words if offered and expected_words in beside else ""
    return action_of(offered, warning), warning, texts(r'<p class="kyc-warning">(.*?)</p>', section[0])


def bulk_row_reading(demo_id: str) -> tuple[str, str, list[str]]:
    """The bulk table's row, rendered from the row as the cache gives it back."""
    cached = bulk_rows.customer_row(0, parsed(demo_id), with_email=False).to_cache()
    row_html = render_to_string(
        "customers/bulk.html#batch-row", {"row": bulk_rows.BatchRow.from_cache(cached)}
    )
    link_cell = re.search(r'<td class="bulk-link">.*?</td>', row_html, re.S)[0]
    offered = ">Copy link</button>" in link_cell
    said = " ".join(texts(r'<(?:p class="bulk-link-warning"|span class="muted small")>(.*?)</', link_cell))
    warning = said if offered else ""
    warnings = texts(r"<li>(.*?)</li>", re.search(r'<td class="bulk-kyc">.*?</td>', row_html, re.S)[0])
    return action_of(offered, warning), said, warnings


def csv_reading(demo_id: str) -> tuple[str, str, str, str]:
    row = bulk_rows.customer_row(0, parsed(demo_id), with_email=False)
    header, record = bulk_export.csv_records([row], with_email=False)
    cells = dict(zip(header, record, strict=True))
    link, note, warnings = cells["KYC link"], cells["KYC link note"], cells["Warnings"]
    return action_of(bool(link), note if link else ""), link, note, warnings


# --- The link and the warnings: card, bulk row, CSV -----------------------------------------


@pytest.mark.parametrize("demo_id", DEMO_IDS, ids=lambda demo_id: demo_id.name)
def test_card_bulk_row_and_csv_agree_on_the_link(staff_client, serve, demo_id):
    action, words = LINKS[demo_id]
    decision = decisions.link_decision(parsed(demo_id).kycs)
    assert (decision.action, decision.reason) == (action, words)

    page = card_page(staff_client, serve, demo_id)
    card_action, card_warning, _ = card_reading(page, demo_id)
    row_action, row_words, _ = bulk_row_reading(demo_id)
    csv_action, csv_link, csv_note, _ = csv_reading(demo_id)

    assert card_action == row_action == csv_action == action
    assert row_words == csv_note == words
    if action == WARN:
        assert card_warning == words
    if decision.note and parsed(demo_id).kycs is not None:
        assert html.escape(decision.note, quote=True) in page  # the card says why, in its own words
    link = DEMO_CUSTOMERS[demo_id]["kycs"]["kyc_flow_link"] if action != WITHHOLD else ""
    assert csv_link == link


@pytest.mark.parametrize("demo_id", DEMO_IDS, ids=lambda demo_id: demo_id.name)
def test_card_bulk_row_and_csv_agree_on_the_warnings(staff_client, serve, demo_id):
    expected = list(decisions.kyc_warnings(parsed(demo_id).kycs))
    assert len(expected) == WARNING_COUNTS.get(demo_id, 0)

    _, _, card_warnings = card_reading(card_page(staff_client, serve, demo_id), demo_id)
    _, _, row_warnings = bulk_row_reading(demo_id)
    *_, csv_warnings = csv_reading(demo_id)

    assert card_warnings == row_warnings == expected
    assert csv_warnings == " ".join(expected)


def test_a_rejected_customers_link_is_handed_out_nowhere_but_the_cards_disclosure(staff_client, serve):
    link = DEMO_CUSTOMERS[DemoId.REJECTED]["kycs"]["kyc_flow_link"]
    page = card_page(staff_client, serve, DemoId.REJECTED)
    disclosure = re.search(r'<details class="kyc-link-disclosure">.*?</details>', page, re.S)[0]
    assert link in disclosure
    assert link not in page.replace(disclosure, "")
    cached = bulk_rows.customer_row(0, parsed(DemoId.REJECTED), with_email=False).to_cache()
    assert link not in json.dumps(cached)
    assert link not in render_to_string(
        "customers/bulk.html#batch-row", {"row": bulk_rows.BatchRow.from_cache(cached)}
    )
    _, record = bulk_export.csv_records([bulk_rows.BatchRow.from_cache(cached)], with_email=False)
    assert link not in "".join(record)


# --- The status: e-mail results, History and the admin show the card's badge -----------------


def card_status(page: str) -> str:
    return re.search(r'<div class="kyc-status">(.*?)</div>', page, re.S)[1]


@pytest.mark.parametrize("demo_id", DEMO_IDS, ids=lambda demo_id: demo_id.name)
def test_email_results_history_and_admin_show_the_cards_status(
    staff_client, admin_client, serve, align, settings, demo_id
):
    settings.ALIGN_WEBHOOKS_ENABLED = True
    body = DEMO_CUSTOMERS[demo_id]
    envelope = json.dumps(kyc_updated_envelope(body, now=timezone.now() - timedelta(minutes=5))).encode()
    delivered = staff_client.generic(
        "POST",
        "/webhooks/align/",
        envelope,
        content_type="application/json",
        headers={"x-hmac-signature": sign(envelope, settings.ALIGN_API_KEY)},
    )
    assert delivered.status_code == 200

    page = card_page(staff_client, serve, demo_id)
    shown = badge(decisions.kyc_summary(parsed(demo_id).kycs).badge)
    assert card_status(page).strip().startswith(shown)

    # History: Align's webhook and this lookup are one state, shown in the card's words.
    history = re.search(
        r'<section class="card-section" aria-labelledby="history-heading">.*?</section>', page, re.S
    )[0]
    assert "history-disagreement" not in history
    (entry,) = re.findall(
        r'<span class="history-state">(.*?)</span>\s*<span class="history-meta">', history, re.S
    )
    assert entry.startswith(shown)

    # The e-mail results list, with another customer so that it is a list.
    other = DemoId.INDIVIDUAL_APPROVED if demo_id != DemoId.INDIVIDUAL_APPROVED else DemoId.FORM_STARTED
    align.get(
        f"{settings.ALIGN_API_BASE_URL}/v0/customers",
        match=[matchers.query_param_matcher({"email": SEARCHED})],
        json={"items": [body, DEMO_CUSTOMERS[other]]},
    )
    results = staff_client.post("/customers/", {"customer_id": SEARCHED}, headers={"HX-Request": "true"})
    match = re.search(
        rf'href="/customers/{demo_id}/".*?<span class="match-badges">(.*?)</span>\s*</a>',
        results.content.decode(),
        re.S,
    )
    assert match[1].endswith(shown)

    # The admin's audit log and webhook events.
    for path in ("/admin/customers/auditevent/", "/admin/customers/kycwebhookevent/"):
        listing = admin_client.get(path).content.decode()
        assert shown in listing, path
