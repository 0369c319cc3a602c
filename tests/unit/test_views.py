"""The lookup pages: access, input, full page vs htmx fragment, failures, and what is shown."""

import re
import uuid
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.align import stand_in_demo
from customers.align.standin.demo import DEMO_CUSTOMERS, DemoId, DrillId
from customers.align.standin.server import serving
from customers.models import AuditEvent

pytestmark = pytest.mark.django_db

ADA = DemoId.INDIVIDUAL_APPROVED
ADA_URL = f"/customers/{ADA}/"
GRACE = DemoId.FORM_STARTED
DEMO_BODIES = DEMO_CUSTOMERS


def detail_url(customer_id) -> str:
    return reverse("customers:detail", kwargs={"customer_ref": str(customer_id)})


def result_fragment(html: str) -> str:
    """The inner HTML of the result area of a full page, to compare with an htmx fragment."""
    match = re.search(
        r'<div id="result" class="result" aria-live="polite">(.*)</div>\s*</section>', html, re.S
    )
    assert match, "no result area in the page"
    return match.group(1)


def normalise_space(html: str) -> str:
    return re.sub(r"\s+", " ", html).strip()


# --- URLs and access ------------------------------------------------------------------------


def test_root_redirects_to_search(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/customers/"


@pytest.mark.parametrize("path", ["/customers/", ADA_URL, f"/customers/?customer_id={ADA}"])
def test_anonymous_user_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_expired_session_in_htmx_request_redirects_the_whole_page(client):
    response = client.get(
        ADA_URL, headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver/customers/{ADA}/"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next=/customers/{ADA}/"


def test_a_customer_clicked_after_the_session_ended_is_where_sign_in_comes_back_to(client):
    """Issue #19, item 8: next= named the customer on screen, not the one clicked."""
    client.cookies[settings.SESSION_COOKIE_NAME] = "a-session-that-idled-out"
    response = client.get(
        f"/customers/{GRACE}/",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{ADA_URL}"},
    )
    assert response["HX-Redirect"] == f"/accounts/login/?next=/customers/{GRACE}/"
    login = client.get(response["HX-Redirect"])
    assert b"Your session ended after 30 minutes without activity." in login.content


def test_user_without_permission_gets_403_saying_what_to_ask_for(client, django_user_model):
    user = django_user_model.objects.create_user(username="visitor", password="irrelevant-password")
    client.force_login(user)
    response = client.get("/customers/")
    assert response.status_code == 403
    assert b"customers.lookup_customer" in response.content
    assert b"add you to the <strong>Compliance staff</strong> group" in response.content


def test_an_auditor_without_lookups_is_pointed_at_the_audit_log_they_can_read(client, django_user_model):
    """Compliance auditors read the trail but look nobody up: "ask to be added to staff" is wrong advice."""
    auditor = django_user_model.objects.create_user(username="auditor", password="irrelevant", is_staff=True)
    auditor.groups.add(Group.objects.get(name="Compliance auditors"))
    client.force_login(auditor)
    response = client.get("/customers/")
    assert response.status_code == 403
    assert b'href="/admin/customers/auditevent/"' in response.content
    assert b"Open the audit log" in response.content
    assert b"Compliance staff" not in response.content


def test_user_without_permission_never_reaches_align(client, django_user_model, align):
    user = django_user_model.objects.create_user(username="visitor", password="irrelevant-password")
    client.force_login(user)
    assert client.get(ADA_URL).status_code == 403
    assert len(align.calls) == 0


def test_superuser_passes_without_explicit_permission(client, django_user_model, serve):
    admin = django_user_model.objects.create_superuser(username="root", password="irrelevant-password")
    client.force_login(admin)
    serve()
    assert client.get(ADA_URL).status_code == 200


def test_deactivated_user_with_permission_is_logged_out(client, django_user_model, align):
    user = django_user_model.objects.create_user(username="gone", password="irrelevant-password")
    user.user_permissions.add(Permission.objects.get(codename="lookup_customer"))
    client.force_login(user)
    user.is_active = False
    user.save()
    response = client.get(ADA_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert len(align.calls) == 0


def test_login_page_renders_and_logs_in(client, staff_user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "jane", "password": "correct horse battery"})
    assert response.status_code == 302
    assert response["Location"] == "/customers/"


def test_wrong_password_shows_an_error(client, staff_user):
    response = client.post("/accounts/login/", {"username": "jane", "password": "wrong"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content


def test_logout_is_post_only(staff_client):
    assert staff_client.get("/accounts/logout/").status_code == 405
    response = staff_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert staff_client.get("/customers/").status_code == 302


def test_post_to_a_customer_address_is_refused(staff_client):
    assert staff_client.post(ADA_URL, {"customer_id": str(ADA)}).status_code == 405


def test_search_post_without_csrf_token_is_refused(staff_user, align):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post("/customers/", {"customer_id": str(ADA)}).status_code == 403
    assert len(align.calls) == 0


def test_search_form_posts_so_what_was_typed_stays_out_of_urls(staff_client):
    html = staff_client.get("/customers/").content.decode()
    form = re.search(r'<form class="lookup-form"[^>]*>', html).group(0)
    assert 'method="post"' in form
    assert 'hx-post="/customers/"' in form
    assert "hx-get" not in form
    assert 'name="csrfmiddlewaretoken"' in html


# --- The search page and its input ----------------------------------------------------------


def test_search_page_has_focused_field_and_no_result(staff_client):
    response = staff_client.get("/customers/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input id="customer-id" name="customer_id"[^>]*autofocus', html)
    assert "Look up a customer" in html


@pytest.mark.parametrize(
    "pasted",
    [
        f"  {ADA}  ",
        str(ADA).upper(),
        f"{{{ADA}}}",
        f"urn:uuid:{ADA}",
        f"https://dashboard.example/customers/{ADA}/?tab=kyc",
        f"\t{str(ADA).replace('-', '')}\n",
    ],
)
def test_pasted_ids_lead_to_the_canonical_customer_address(staff_client, pasted):
    response = staff_client.post("/customers/", {"customer_id": pasted})
    assert response.status_code == 302
    assert response["Location"] == ADA_URL


def test_links_made_with_a_customer_id_query_still_work(staff_client):
    response = staff_client.get("/customers/", {"customer_id": str(ADA).upper()})
    assert response.status_code == 302
    assert response["Location"] == ADA_URL


@pytest.mark.parametrize("pasted", ["not-a-uuid", "3f2a9c1e", f"{ADA}0", "<script>alert(1)</script>"])
def test_invalid_input_is_rejected_inline_without_calling_align(staff_client, align, pasted):
    response = staff_client.post("/customers/", {"customer_id": pasted})
    assert response.status_code == 400
    html = response.content.decode()
    assert (
        "Not a customer ID. Paste the customer&#x27;s UUID, e.g. 3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91."
        in html
    )
    assert "{example}" not in html
    assert "%(example)s" not in html
    assert 'aria-invalid="true"' in html
    assert "<script>alert(1)</script>" not in html
    assert len(align.calls) == 0


@pytest.mark.parametrize("typed", ["not-a-uuid", "", "   "])
def test_invalid_input_is_explained_once_under_the_field_and_the_card_stays_short(staff_client, typed):
    html = staff_client.post("/customers/", {"customer_id": typed}).content.decode()
    field_message = "Paste a customer ID first." if not typed.strip() else "Not a customer ID."
    assert html.count(field_message) == 1
    assert re.search(r'<p id="customer-id-status" class="field-error">[^<]*' + re.escape(field_message), html)
    card = re.search(r'<div class="card failure-card.*?</div>', result_fragment(html), re.S).group(0)
    assert "Nothing was looked up" in card
    assert "<p>" not in card
    assert "Paste" not in card
    assert "Not a customer ID" not in card


def test_invalid_input_in_htmx_returns_a_short_card_and_the_field_message_out_of_band(
    staff_client, align, htmx_headers
):
    response = staff_client.post("/customers/", {"customer_id": "nope"}, headers=htmx_headers)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<html" not in html
    assert "Nothing was looked up" in html
    assert re.search(
        r'<p id="customer-id-status" class="field-error" hx-swap-oob="true">Not a customer ID. Paste', html
    )
    assert len(align.calls) == 0


@pytest.mark.parametrize(
    ("current_url", "header"),
    [
        (f"http://testserver{ADA_URL}", "HX-Push-Url"),
        ("http://testserver/customers/?customer_id=jane%40example.com", "HX-Replace-Url"),
        ("http://testserver/customers/", "HX-Replace-Url"),
    ],
)
def test_invalid_input_in_htmx_moves_the_address_bar_to_the_search_page(
    staff_client, htmx_headers, current_url, header
):
    """A reload after invalid input must not look the previous customer up again."""
    response = staff_client.post(
        "/customers/",
        # Not a whole e-mail address (no dot in the domain), so invalid input rather than a search.
        {"customer_id": "jane@example"},
        headers=htmx_headers | {"HX-Current-URL": current_url},
    )
    assert response[header] == "/customers/"
    other = "HX-Replace-Url" if header == "HX-Push-Url" else "HX-Push-Url"
    assert other not in response
    assert "jane@example" not in response[header]


def test_valid_input_in_htmx_returns_fragment_and_pushes_the_customer_address(
    staff_client, serve, htmx_headers
):
    serve()
    response = staff_client.post(
        "/customers/", {"customer_id": f" {str(ADA).upper()} "}, headers=htmx_headers
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == ADA_URL
    html = response.content.decode()
    assert "<html" not in html
    assert "Ada Lovelace" in html
    # The out-of-band swap clears any earlier error under the field.
    assert re.search(r'<p id="customer-id-status" class="field-error" hx-swap-oob="true">\s*</p>', html)


def test_non_canonical_detail_address_redirects_to_the_canonical_one(staff_client, align):
    response = staff_client.get(f"/customers/{str(ADA).upper()}/")
    assert response.status_code == 301
    assert response["Location"] == ADA_URL
    assert len(align.calls) == 0


def test_detail_address_that_is_not_a_uuid_gets_400_with_the_message(staff_client, align):
    response = staff_client.get("/customers/definitely-not-an-id/")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not a customer ID" in html
    assert 'value="definitely-not-an-id"' in html
    assert 'aria-invalid="true"' in html
    assert len(align.calls) == 0


# --- Full page vs fragment ------------------------------------------------------------------


def test_deep_link_renders_the_full_page(staff_client, serve):
    serve()
    response = staff_client.get(ADA_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith("<!doctype html>")
    assert "Ada Lovelace" in html
    assert f'value="{ADA}"' in html


def test_htmx_request_to_the_same_address_returns_only_the_fragment(staff_client, serve, htmx_headers):
    serve()
    response = staff_client.get(ADA_URL, headers=htmx_headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert '<header class="topbar"' not in html
    assert "Ada Lovelace" in html


def test_deep_link_and_htmx_swap_render_identical_result_markup(
    staff_client, serve, htmx_headers, monkeypatch
):
    fixed = timezone.now().replace(microsecond=0)
    monkeypatch.setattr("customers.views.lookup.timezone.now", lambda: fixed)
    serve()
    serve()
    full = staff_client.get(ADA_URL).content.decode()
    fragment = staff_client.get(ADA_URL, headers=htmx_headers).content.decode()
    result_part, recent_part = fragment.split('<aside id="recent-lookups"')
    result_part = result_part.split("<title>")[0]
    assert normalise_space(result_fragment(full)) == normalise_space(result_part)
    assert 'hx-swap-oob="true"' in recent_part


def test_history_restore_request_gets_the_full_page(staff_client, serve):
    serve()
    response = staff_client.get(ADA_URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert response.content.decode().startswith("<!doctype html>")


def test_customer_pages_are_never_cached_and_vary_on_htmx(staff_client, serve):
    serve()
    response = staff_client.get(ADA_URL)
    assert "no-store" in response["Cache-Control"]
    assert "HX-Request" in response["Vary"]


# --- What the page shows --------------------------------------------------------------------


def test_individual_shows_name_email_type_and_id(staff_client, serve):
    serve()
    html = staff_client.get(ADA_URL).content.decode()
    assert '<h2 id="customer-name" class="customer-name">Ada Lovelace</h2>' in html
    assert "ada.lovelace@example.com" in html
    assert "Individual" in html
    assert f'data-copy-text="{ADA}"' in html


def test_corporate_shows_company_name(staff_client, serve):
    serve(DemoId.CORPORATE_APPROVED)
    html = staff_client.get(detail_url(DemoId.CORPORATE_APPROVED)).content.decode()
    assert "Falcon Trading FZ-LLC" in html
    assert "Corporate" in html


@pytest.mark.parametrize(
    ("demo_id", "expected"),
    [
        (DemoId.INDIVIDUAL_APPROVED, ["badge-approved", "Approved", "KYC approved."]),
        (DemoId.FORM_STARTED, ["Pending", "Form started", "Remind them to complete it with the KYC link."]),
        (DemoId.UNDER_REVIEW, ["Pending", "Under review", "wait for Align&#x27;s decision"]),
        (
            DemoId.RESUBMISSION_REQUIRED,
            ["Pending", "Resubmission required", "Send the customer the same KYC link to resubmit."],
        ),
        (DemoId.REJECTED, ["badge-rejected", "Rejected", "Do not onboard; escalate per policy."]),
        (DemoId.KYC_NOT_STARTED, ["Not started", "Align has no KYC for this customer yet."]),
    ],
)
def test_kyc_state_is_shown_in_words_staff_can_act_on(staff_client, serve, demo_id, expected):
    serve(demo_id)
    html = staff_client.get(detail_url(demo_id)).content.decode()
    for words in expected:
        assert words in html


def test_null_overall_status_reads_unknown(staff_client, serve):
    serve(change=lambda body: body["kycs"].update(status=None))
    html = staff_client.get(ADA_URL).content.decode()
    assert "Unknown" in html
    assert "Align returned no overall status." in html


def test_unrecognised_values_are_shown_as_sent_and_marked(staff_client, serve):
    def change(body):
        body["kycs"]["status_breakdown"].append(
            {"currency": "gbp", "payment_rails": "faster_payments", "status": "x"}
        )

    serve(change=change)
    html = staff_client.get(ADA_URL).content.decode()
    assert "gbp · faster_payments" in html
    assert "unrecognised" in html
    assert "Ada Lovelace" in html


def test_a_rail_align_added_later_is_marked_even_when_its_status_is_known(staff_client, serve):
    def change(body):
        swift = {"currency": "usd", "payment_rails": "swift", "status": "approved"}
        body["kycs"]["status_breakdown"] = [swift]

    serve(change=change)
    html = staff_client.get(ADA_URL).content.decode()
    assert re.search(r'<th scope="row">USD · swift <span class="badge-note">unrecognised</span></th>', html)


def test_breakdown_rows_have_readable_labels_and_badges(staff_client, serve):
    serve(DemoId.CORPORATE_APPROVED)
    html = normalise_space(staff_client.get(detail_url(DemoId.CORPORATE_APPROVED)).content.decode())
    assert '<th scope="row">AED · UAEFTS</th><td><span class="badge badge-approved">' in html
    assert '<th scope="row">USD · Wire</th><td><span class="badge badge-pending">' in html


def test_copy_button_carries_exactly_the_flow_link(staff_client, serve, demo_body):
    link = demo_body()["kycs"]["kyc_flow_link"]
    serve()
    html = staff_client.get(ADA_URL).content.decode()
    assert f'<a id="kyc-flow-link" class="kyc-link-url" href="{link}"' in html
    assert re.search(
        rf'<button type="button"[^>]*data-copy-text="{re.escape(link)}"[^>]*>Copy link</button>', html
    )


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<b>x</b>",
        "ftp://x.example/",
    ],
)
def test_non_web_flow_link_is_inert_text_with_a_warning(staff_client, serve, link):
    serve(change=lambda body: body["kycs"].update(kyc_flow_link=link))
    html = staff_client.get(ADA_URL).content.decode()
    assert 'id="kyc-flow-link"' not in html
    assert "Copy link" not in html
    assert "not a plain web link (http or https, printable characters only" in html
    assert f'href="{link}' not in html.replace("&amp;", "&")


def test_hostile_strings_from_align_are_escaped(staff_client, serve):
    def change(body):
        body.update(
            type="corporate", company_name='<script>alert("x")</script>', email="a@b.example<img src=x>"
        )

    serve(change=change)
    html = staff_client.get(ADA_URL).content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<img src=x>" not in html


# --- The address rule -----------------------------------------------------------------------

ADA_STREET = "12 St James&#x27;s Square"


def test_approved_customer_with_address_shows_it(staff_client, serve):
    serve()
    html = staff_client.get(ADA_URL).content.decode()
    assert ADA_STREET in html
    assert "SW1Y 4JH<br>United Kingdom (GB)" in html


def test_approved_customer_without_address_says_align_has_none(staff_client, serve):
    serve(change=lambda body: body.update(address=None))
    html = staff_client.get(ADA_URL).content.decode()
    assert "Align has no address on file for this customer." in html


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda body: body["kycs"].update(status="pending"), id="pending"),
        pytest.param(lambda body: body["kycs"].update(status="rejected"), id="rejected"),
        pytest.param(lambda body: body["kycs"].update(status=None), id="status-null"),
        pytest.param(lambda body: body["kycs"].update(status="approved_later"), id="unrecognised"),
        pytest.param(lambda body: body.update(kycs=None), id="kycs-null"),
    ],
)
def test_address_sent_for_a_customer_not_approved_is_never_rendered(
    staff_client, serve, htmx_headers, change
):
    serve(change=change)
    serve(change=change)
    for response in (staff_client.get(ADA_URL), staff_client.get(ADA_URL, headers=htmx_headers)):
        html = response.content.decode()
        for part in ("St James", "SW1Y", "Greater London", "<address"):
            assert part not in html
        assert "Hidden until KYC is approved." in html


# --- Failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "title", "sentence"),
    [
        ({"status": 404, "json": {}}, 404, "No customer with this ID", "other environment"),
        ({"status": 401, "json": {}}, 502, "API key was rejected", "contact an administrator"),
        ({"status": 403, "json": {}}, 502, "API key was rejected", "contact an administrator"),
        (
            {"status": 429, "json": {}, "headers": {"Retry-After": "17"}},
            503,
            "rate-limiting",
            "wait 17 seconds",
        ),
        ({"status": 500, "json": {}}, 502, "Align is unavailable", "Try again shortly."),
        ({"status": 503, "json": {}}, 502, "Align is unavailable", "Try again shortly."),
        ({"body": requests.ConnectionError()}, 503, "Align is unavailable", "Try again shortly."),
        ({"body": requests.ReadTimeout()}, 504, "Align did not answer in time", "Align may be degraded"),
        ({"body": "<html>oops</html>", "status": 200}, 502, "Unexpected response from Align", "was logged"),
        ({"json": ["not", "an", "object"]}, 502, "Unexpected response from Align", "was logged"),
        ({"json": {"customer_id": str(ADA)}}, 502, "Unexpected response from Align", "was logged"),
    ],
)
def test_each_upstream_failure_has_its_message_and_status(
    staff_client, align, customer_url, htmx_headers, answer, status, title, sentence
):
    align.get(customer_url(ADA), **answer)
    align.get(customer_url(ADA), **answer)
    full = staff_client.get(ADA_URL)
    fragment = staff_client.get(ADA_URL, headers=htmx_headers)
    for response in (full, fragment):
        assert response.status_code == status
        html = response.content.decode()
        assert title in html
        assert sentence in html
        assert str(ADA) in html
    assert full.content.decode().startswith("<!doctype html>")
    assert "<html" not in fragment.content.decode()


def test_rate_limit_passes_retry_after_on(staff_client, align, customer_url):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "30"})
    response = staff_client.get(ADA_URL)
    assert response["Retry-After"] == "30"


def test_missing_api_key_says_the_dashboard_is_not_configured(staff_client, align, settings):
    settings.ALIGN_API_KEY = ""
    response = staff_client.get(ADA_URL)
    assert response.status_code == 503
    assert b"The dashboard has no API key" in response.content
    assert len(align.calls) == 0


def test_htmx_is_configured_to_swap_the_failure_statuses_the_views_use():
    """htmx 2 ignores 4xx/5xx bodies by default; the page's config must list every status we send."""
    from customers.services.decisions import _FAILURES, INVALID_INPUT

    html = (settings.BASE_DIR / "templates" / "base.html").read_text()
    swapped = re.search(r'"code": "\^\(([0-9|]+)\)\$", "swap": true', html)
    assert swapped, "no swap rule for error statuses in the htmx-config meta tag"
    statuses = {int(code) for code in swapped.group(1).split("|")}
    used = {failure.status for failure in _FAILURES.values()} | {INVALID_INPUT.status, 503}
    assert used <= statuses


# --- Secrets --------------------------------------------------------------------------------


def test_api_key_never_reaches_a_page(staff_client, serve, align, customer_url, htmx_headers):
    serve()
    align.get(customer_url(DemoId.REJECTED), status=401)
    pages = [
        staff_client.get("/customers/"),
        staff_client.get(ADA_URL),
        staff_client.get(detail_url(DemoId.REJECTED), headers=htmx_headers),
        staff_client.get("/customers/", {"customer_id": "bad"}),
    ]
    for page in pages:
        assert settings.ALIGN_API_KEY.encode() not in page.content
        assert all(settings.ALIGN_API_KEY not in value for value in page.headers.values())


# --- Environment banner and demo IDs --------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "label"),
    [
        ("https://api.alignlabs.dev", "Production"),
        ("https://api-sandbox.alignlabs.dev", "Sandbox"),
        ("http://127.0.0.1:8001", "Local stand-in"),
        ("https://align-proxy.internal.example", "Custom: align-proxy.internal.example"),
    ],
)
def test_banner_names_the_configured_upstream(staff_client, settings, base_url, label):
    settings.ALIGN_API_BASE_URL = base_url
    html = staff_client.get("/customers/").content.decode()
    assert re.search(rf'<span class="env env-\w+"[^>]*>{re.escape(label)}</span>', html)


def test_demo_ids_are_listed_only_when_pointed_at_the_stand_in(staff_client, settings):
    """In a debug run; the list is the stand-in's own (tests/unit/test_stand_in_demo.py)."""
    settings.DEBUG = True
    stand_in_demo._read.cache_clear()
    with serving(api_key=settings.ALIGN_API_KEY) as stand_in:
        settings.ALIGN_API_BASE_URL = stand_in.base_url
        assert str(DrillId.SERVER_ERROR).encode() in staff_client.get("/customers/").content
        assert str(ADA).encode() in staff_client.get("/customers/").content
    settings.ALIGN_API_BASE_URL = "https://api-sandbox.alignlabs.dev"
    assert str(ADA).encode() not in staff_client.get("/customers/").content


def test_a_fresh_uuid_that_align_does_not_know_shows_not_found(staff_client, align, customer_url):
    unknown = uuid.uuid4()
    align.get(customer_url(unknown), status=404, json={"message": "Customer not found"})
    response = staff_client.get(detail_url(unknown))
    assert response.status_code == 404
    assert b"No customer with this ID" in response.content


def test_page_title_names_the_customer_by_id_not_by_name(staff_client, serve):
    """Titles end up in browser history; an ID is fine there, a person's name is not."""
    serve()
    html = staff_client.get(ADA_URL).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "3f2a9c1e" in title
    assert "Ada" not in title


def test_an_unexpected_error_shows_a_calm_500_page_without_details(staff_user, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("bug with a secret detail")

    monkeypatch.setattr("customers.align.client.customer_get", broken)
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    response = client.get(ADA_URL)
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content
    assert b"secret detail" not in response.content


def test_logs_of_lookups_carry_the_customer_id_but_no_pii_or_key(
    staff_client, serve, align, customer_url, caplog
):
    caplog.set_level("DEBUG")
    body = serve(
        change=lambda body: body["kycs"]["status_breakdown"].append(
            {"currency": "gbp", "payment_rails": "ach", "status": "approved"}
        )
    )
    align.get(customer_url(DemoId.REJECTED), body="not json")
    staff_client.get(ADA_URL)
    staff_client.get(detail_url(DemoId.REJECTED))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert str(ADA) in logged
    assert str(DemoId.REJECTED) in logged
    for secret in (
        settings.ALIGN_API_KEY,
        body["email"],
        body["first_name"],
        body["last_name"],
        body["address"]["street_line_1"],
        body["address"]["postal_code"],
        body["kycs"]["kyc_flow_link"],
    ):
        assert secret not in logged


def test_failure_card_shows_the_reference_that_is_in_the_log_line(staff_client, align, customer_url, caplog):
    align.get(customer_url(ADA), status=500)
    response = staff_client.get(ADA_URL)
    reference = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{12}", reference)
    assert f'<code class="request-id">{reference}</code>' in response.content.decode()
    assert f"request_id={reference}" in caplog.text


def test_try_again_is_offered_for_transient_failures_only(staff_client, align, customer_url):
    align.get(customer_url(ADA), status=503)
    assert b">Try again</a>" in staff_client.get(ADA_URL).content
    unknown = uuid.uuid4()
    align.get(customer_url(unknown), status=404)
    assert b">Try again</a>" not in staff_client.get(detail_url(unknown)).content


@pytest.mark.parametrize("status", [401, 403, 200])
def test_red_cards_for_an_administrator_offer_no_try_again(staff_client, align, customer_url, status):
    align.get(customer_url(ADA), status=status, body="not json" if status == 200 else "")
    html = staff_client.get(ADA_URL).content.decode()
    assert "failure-broken" in html
    assert "Try again" not in html


def test_rate_limited_try_again_carries_the_wait_for_the_countdown(staff_client, align, customer_url):
    align.get(customer_url(ADA), status=429, headers={"Retry-After": "45"})
    html = staff_client.get(ADA_URL).content.decode()
    assert re.search(r'<a class="button try-again"[^>]*data-retry-after="45"[^>]*>Try again</a>', html)


# --- Which customer the page is about, after a swap (issue #9) ------------------------------


def page_title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1)


@pytest.mark.parametrize("status", [200, 404, 500])
def test_swap_carries_the_same_tab_title_as_the_deep_link(
    staff_client, align, customer_url, status, htmx_headers
):
    kwargs = {"json": DEMO_BODIES[ADA]} if status == 200 else {"status": status}
    align.get(customer_url(ADA), **kwargs)
    align.get(customer_url(ADA), **kwargs)
    full = page_title(staff_client.get(ADA_URL).content.decode())
    fragment = staff_client.get(ADA_URL, headers=htmx_headers).content.decode()
    assert page_title(fragment) == full == "Customer 3f2a9c1e…7e91 · KYC Desk"


def test_invalid_input_swap_carries_the_same_tab_title_as_the_page(staff_client, htmx_headers):
    full = page_title(staff_client.post("/customers/", {"customer_id": "nope"}).content.decode())
    fragment = staff_client.post(
        "/customers/", {"customer_id": "nope"}, headers=htmx_headers
    ).content.decode()
    assert page_title(fragment) == full == "Nothing was looked up · KYC Desk"


def test_customer_card_and_failure_card_name_the_customer_id_they_show(
    staff_client, align, customer_url, serve
):
    serve()
    card = staff_client.get(ADA_URL).content.decode()
    assert re.search(rf'<article class="card customer-card"[^>]*data-customer-id="{ADA}">', card)
    other = uuid.uuid4()
    align.get(customer_url(other), status=404)
    failure = staff_client.get(detail_url(other)).content.decode()
    assert re.search(rf'class="card failure-card failure-check"[^>]*data-customer-id="{other}"', failure)


def test_every_swap_clears_or_sets_the_message_under_the_field(staff_client, serve, htmx_headers):
    serve()
    html = staff_client.get(ADA_URL, headers=htmx_headers).content.decode()
    assert re.search(r'<p id="customer-id-status" class="field-error" hx-swap-oob="true">\s*</p>', html)


# --- What the overall status means for the rails, and addresses by country (issue #9) ----------


def address_block(html: str) -> str:
    match = re.search(r'<address class="address">(.*?)</address>', html, re.S)
    assert match, "no address on the card"
    return match.group(1)


def test_approved_corporate_demo_says_under_the_breakdown_that_its_pending_rail_cannot_be_used(
    staff_client, serve
):
    serve(DemoId.CORPORATE_APPROVED)
    html = normalise_space(staff_client.get(detail_url(DemoId.CORPORATE_APPROVED)).content.decode())
    assert (
        '</table> <p class="kyc-warning">'
        "Approved overall; USD · Wire is still pending, so that rail can&#x27;t be used yet.</p>"
    ) in html


def test_approved_corporate_demo_names_the_country_and_leaves_out_the_placeholder_postal_code(
    staff_client, serve
):
    serve(DemoId.CORPORATE_APPROVED)
    address = address_block(staff_client.get(detail_url(DemoId.CORPORATE_APPROVED)).content.decode())
    assert address.endswith("Dubai<br>United Arab Emirates (AE)")
    assert "00000" not in address


def test_gb_address_puts_the_postcode_on_its_own_line_and_names_the_country(staff_client, serve):
    serve()
    address = address_block(staff_client.get(ADA_URL).content.decode())
    assert address.endswith("London<br>Greater London<br>SW1Y 4JH<br>United Kingdom (GB)")


def test_rejected_demo_says_not_to_use_the_rail_that_still_shows_pending(staff_client, serve):
    serve(DemoId.REJECTED)
    html = staff_client.get(detail_url(DemoId.REJECTED)).content.decode()
    assert (
        '<p class="kyc-warning">Rejected overall: do not use any rail, '
        "even though EUR · SEPA still shows Pending.</p>"
    ) in html


def test_no_rails_note_when_every_rail_agrees_with_the_overall_status(staff_client, serve):
    serve()
    assert b"kyc-warning" not in staff_client.get(ADA_URL).content


def test_rails_note_escapes_a_rail_status_sent_by_align(staff_client, serve):
    def change(body):
        body["kycs"].update(status="rejected")
        body["kycs"]["status_breakdown"][0]["status"] = "<img src=x>"

    serve(change=change)
    html = staff_client.get(ADA_URL).content.decode()
    assert "<img src=x>" not in html
    assert "USD · ACH shows “&lt;img src=x&gt;”" in html


def test_unknown_country_is_shown_as_sent_and_escaped(staff_client, serve):
    serve(change=lambda body: body["address"].update(country="<b>Narnia</b>"))
    address = address_block(staff_client.get(ADA_URL).content.decode())
    assert address.endswith("SW1Y 4JH<br>&lt;b&gt;Narnia&lt;/b&gt;")


def test_customer_without_kyc_is_told_who_can_start_a_session(staff_client, serve):
    serve(DemoId.KYC_NOT_STARTED)
    html = staff_client.get(detail_url(DemoId.KYC_NOT_STARTED)).content.decode()
    assert (
        "<strong>Next step:</strong> Align has no KYC for this customer yet. "
        "A compliance lead can start one with Start new KYC session on this card; "
        "then send the customer its link."
    ) in html


# --- The KYC link by KYC state, and who already copied it -------------------------------------


def kyc_link_html(html: str) -> str:
    """The card's KYC link block, to the end of the KYC section."""
    match = re.search(r'<div class="kyc-link">.*?</section>', html, re.S)
    assert match, "no KYC link block in the page"
    return match.group(0)


def copy_link_button(html: str) -> str:
    (button,) = re.findall(r"<button[^>]*>Copy link</button>", html, re.S)
    return button


def link_copies_line(html: str) -> str:
    match = re.search(r'<div id="link-copies".*?</div>', html, re.S)
    assert match, "no link copies line in the page"
    return normalise_space(match.group(0))


def record_copy(user, customer_id=ADA, minutes_ago: float = 0) -> AuditEvent:
    event = AuditEvent.objects.create(
        user=user,
        action=AuditEvent.Action.LINK_COPIED,
        customer_id=customer_id,
        outcome=AuditEvent.Outcome.COPIED,
    )
    if minutes_ago:
        event.occurred_at -= timedelta(minutes=minutes_ago)
        event.save(update_fields=["occurred_at"])
    return event


def at_today(event: AuditEvent) -> str:
    return f"at {timezone.localtime(event.occurred_at):%H:%M} today"


@pytest.fixture
def colleague(django_user_model):
    return django_user_model.objects.create_user(username="j.smith", password="irrelevant-password")


def test_rejected_card_keeps_the_link_behind_show_link_anyway_with_a_warning(staff_client, serve):
    serve(DemoId.REJECTED)
    block = kyc_link_html(staff_client.get(detail_url(DemoId.REJECTED)).content.decode())
    disclosure = re.search(
        r'<details class="kyc-link-disclosure">\s*<summary>Show link anyway</summary>(.*?)</details>',
        block,
        re.S,
    )
    assert disclosure, "no 'Show link anyway' disclosure"
    inside = disclosure.group(1)
    assert "KYC was rejected: do not onboard. Send this link only if compliance policy says so." in inside
    assert 'id="kyc-flow-link"' in inside
    assert "data-audit-beacon" in copy_link_button(inside)
    outside = block.replace(disclosure.group(0), "")
    assert 'id="kyc-flow-link"' not in outside
    assert "Copy link" not in outside


def test_rejected_card_has_no_primary_copy_link(staff_client, serve):
    serve(DemoId.REJECTED)
    block = kyc_link_html(staff_client.get(detail_url(DemoId.REJECTED)).content.decode())
    assert "button-primary" not in copy_link_button(block)


def test_approved_card_offers_copy_link_as_a_secondary_button(staff_client, serve):
    serve()
    block = kyc_link_html(staff_client.get(ADA_URL).content.decode())
    assert 'class="button button-small"' in copy_link_button(block)
    assert "Show link anyway" not in block
    assert "KYC is approved; there is normally nothing to send." in block


@pytest.mark.parametrize(
    "demo_id", [DemoId.FORM_STARTED, DemoId.UNDER_REVIEW, DemoId.RESUBMISSION_REQUIRED], ids=str
)
def test_pending_card_offers_copy_link_as_the_primary_action(staff_client, serve, demo_id):
    serve(demo_id)
    block = kyc_link_html(staff_client.get(detail_url(demo_id)).content.decode())
    assert 'class="button button-primary button-small"' in copy_link_button(block)
    assert "Show link anyway" not in block


def test_card_with_an_unrecognised_status_offers_the_link_quietly_and_says_to_check(staff_client, serve):
    serve(change=lambda body: body["kycs"].update(status="suspended"))
    block = kyc_link_html(staff_client.get(ADA_URL).content.decode())
    assert "button-primary" not in copy_link_button(block)
    assert "check it before sending the link." in block


def test_card_says_who_last_copied_the_link_and_when(staff_client, serve, colleague):
    copy = record_copy(colleague, minutes_ago=0.5)
    serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    assert "Link last copied by j.smith <time datetime=" in line
    assert f">{at_today(copy)}</time>" in line


def test_card_says_you_when_the_reader_copied_the_link_last(staff_client, serve, staff_user, colleague):
    record_copy(colleague)
    record_copy(staff_user)
    serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    assert "Link last copied by you <time" in line
    assert "Link last copied by j.smith" not in line


def test_card_says_when_the_link_was_never_copied(staff_client, serve, colleague):
    record_copy(colleague, customer_id=DemoId.FORM_STARTED)
    serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    assert "Not copied from KYC Desk yet." in line
    assert "j.smith" not in line


def test_a_copy_in_the_last_hour_warns_before_sending_again(staff_client, serve, colleague):
    """For a customer still pending; an approved one's copy says there is nothing more to send."""
    record_copy(colleague, minutes_ago=12.5, customer_id=GRACE)
    serve(GRACE)
    line = link_copies_line(staff_client.get(f"/customers/{GRACE}/").content.decode())
    warning = "Copied 12 minutes ago — check before sending it again."
    assert f'<p class="link-copies-recent small">{warning}</p>' in line


def test_a_copy_over_an_hour_ago_comes_without_a_warning(staff_client, serve, colleague):
    record_copy(colleague, minutes_ago=61)
    serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    assert "Link last copied by j.smith" in line
    assert "check before sending" not in line


def test_card_lists_the_last_five_copies_behind_a_disclosure(staff_client, serve, staff_user, colleague):
    copies = [record_copy(colleague if number % 2 else staff_user) for number in range(7)]
    serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    history = re.search(
        r'<details class="link-copies-history"> <summary>Last 5 copies</summary>(.*?)</details>', line
    )
    assert history, "no disclosure of the last five copies"
    entries = re.findall(r'<li>(\S+) <time datetime="([^"]+)">', history.group(1))
    assert entries == [
        ("j.smith" if event.user == colleague else "you", timezone.localtime(event.occurred_at).isoformat())
        for event in copies[::-1][:5]
    ]


def test_a_single_copy_needs_no_list_of_copies(staff_client, serve, colleague):
    record_copy(colleague)
    serve()
    assert "link-copies-history" not in link_copies_line(staff_client.get(ADA_URL).content.decode())


def test_link_copies_show_usernames_and_times_only(staff_client, serve, demo_body, colleague):
    record_copy(colleague)
    record_copy(colleague)
    body = serve()
    line = link_copies_line(staff_client.get(ADA_URL).content.decode())
    personal = [
        body["email"],
        body["first_name"],
        body["last_name"],
        body["address"]["street_line_1"],
        body["address"]["city"],
        body["kycs"]["kyc_flow_link"],
        str(ADA),
    ]
    assert [value for value in personal if value in line] == []
    assert "j.smith" in line


# --- Lone surrogates from Align (issue #10, finding 4) -----------------------------------------

LONE_SURROGATE = chr(0xD800)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda body: body.update(first_name=f"x{LONE_SURROGATE}y"), id="first_name"),
        pytest.param(lambda body: body["kycs"].update(status=f"approved{LONE_SURROGATE}"), id="kycs.status"),
        pytest.param(lambda body: body["address"].update(city=LONE_SURROGATE), id="address.city"),
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["full-page", "htmx"])
def test_lone_surrogate_from_align_is_an_unexpected_response_on_record(
    staff_client, serve, htmx_headers, change, htmx
):
    serve(change=change)
    response = staff_client.get(ADA_URL, headers=htmx_headers if htmx else {})
    assert response.status_code == 502
    assert "Unexpected response from Align" in response.content.decode()
    event = AuditEvent.objects.get()
    assert (event.outcome, event.kyc_status) == (AuditEvent.Outcome.INVALID_RESPONSE, "")


# --- KYC links with bidi or invisible characters (issue #10, finding 7) ------------------------


@pytest.mark.parametrize(
    "char", ["\u202e", "\u200b", "\u2066", "\u061c"], ids=lambda char: f"U+{ord(char):04X}"
)
def test_flow_link_with_a_bidi_or_invisible_character_is_inert_escaped_text_with_the_warning(
    staff_client, serve, char
):
    link = f"https://kyc.example.test/flow/{char}fdp.exe"
    serve(change=lambda body: body["kycs"].update(kyc_flow_link=link))
    html = staff_client.get(ADA_URL).content.decode()
    block = kyc_link_html(html)
    assert "<a " not in block
    assert "Copy link" not in block
    assert "data-audit-beacon" not in html
    escaped = f"\\u{ord(char):04x}"
    assert f'<code class="kyc-link-inert">https://kyc.example.test/flow/{escaped}fdp.exe</code>' in block
    assert "not a plain web link (http or https, printable characters only" in block
    assert char not in html


@pytest.mark.parametrize("demo_id", [DemoId.NON_WEB_LINK, DemoId.NO_KYC_LINK])
def test_a_card_without_a_sendable_link_does_not_tell_staff_to_send_it(staff_client, serve, demo_id):
    serve(demo_id)
    html = staff_client.get(detail_url(demo_id)).content.decode()
    next_step = re.search(r'<p class="kyc-next-step">(.*?)</p>', html, re.S).group(1)
    assert "Align sent no KYC link that can be sent" in next_step
    assert "Send the customer" not in next_step
    assert "Remind them" not in next_step
