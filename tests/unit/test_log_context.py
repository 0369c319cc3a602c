"""Log lines say which request, user and customer they are about, and nothing personal.

The end-to-end tests capture what the configured "console" handler would write (same formatter,
same filters) while real requests run, and read it back line by line as JSON.
"""

import io
import json
import logging
import uuid

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client
from pythonjsonlogger.json import JsonFormatter

from customers.align.standin.demo import DemoId
from dashboard.ops.log_context import (
    LogContextMiddleware,
    RequestContextFilter,
    bind_customer,
    current_customer_id,
    current_user_id,
)
from dashboard.ops.request_id import current_request_id
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME
from tests.unit.test_settings import PRODUCTION_LIKE, load_settings

ADA = str(DemoId.INDIVIDUAL_APPROVED)
FALCON = str(DemoId.CORPORATE_APPROVED)
REQUIRED_KEYS = {"time", "level", "logger", "message", "request_id"}
WRONG_PASSWORD = "Wrong-Passw0rd-q7Zx"


def record(**extra) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": "tests", "levelno": logging.INFO, "levelname": "INFO", "msg": "hello", **extra}
    )


@pytest.fixture
def context_vars():
    """Set the three context variables for one test, and put them back afterwards."""
    tokens = []

    def set_context(request_id: str, user_id: str, customer_id: str) -> None:
        tokens.extend(
            [
                (current_request_id, current_request_id.set(request_id)),
                (current_user_id, current_user_id.set(user_id)),
                (current_customer_id, current_customer_id.set(customer_id)),
            ]
        )

    yield set_context
    for variable, token in reversed(tokens):
        variable.reset(token)


# --- The filter and the middleware ------------------------------------------------------------


def test_filter_adds_request_user_and_customer_ids(context_vars):
    context_vars("a1b2c3d4e5f6", "42", ADA)
    line = record()
    assert RequestContextFilter().filter(line) is True
    assert (line.request_id, line.user_id, line.customer_id) == ("a1b2c3d4e5f6", "42", ADA)


def test_filter_uses_dashes_outside_a_request():
    line = record()
    RequestContextFilter().filter(line)
    assert (line.request_id, line.user_id, line.customer_id) == ("-", "-", "-")


def test_explicit_extra_wins_over_the_context(context_vars):
    context_vars("a1b2c3d4e5f6", "42", ADA)
    line = record(user_id="7", customer_id=FALCON)
    RequestContextFilter().filter(line)
    assert (line.request_id, line.user_id, line.customer_id) == ("a1b2c3d4e5f6", "7", FALCON)


def test_django_request_lines_take_the_request_id_from_their_request(rf):
    """django.request logs "Not Found: ..." after the middleware has reset the context."""
    request = rf.get("/customers/")
    request.request_id = "0badc0ffee00"
    line = record(request=request)
    RequestContextFilter().filter(line)
    assert line.request_id == "0badc0ffee00"


def test_bind_customer_puts_the_customer_on_later_lines(context_vars):
    context_vars("a1b2c3d4e5f6", "42", "-")
    bind_customer(uuid.UUID(ADA))
    line = record()
    RequestContextFilter().filter(line)
    assert line.customer_id == ADA


@pytest.mark.django_db
def test_middleware_binds_the_signed_in_user_and_resets_afterwards(rf, staff_user):
    seen = {}

    def view(request):
        bind_customer(ADA)
        seen["user_id"] = current_user_id.get()
        return None

    request = rf.get("/")
    request.user = staff_user
    LogContextMiddleware(view)(request)
    assert seen["user_id"] == str(staff_user.pk)
    assert (current_user_id.get(), current_customer_id.get()) == ("-", "-")


def test_middleware_uses_a_dash_for_an_anonymous_user(rf):
    seen = {}

    def view(request):
        seen["user_id"] = current_user_id.get()

    request = rf.get("/")
    request.user = AnonymousUser()
    LogContextMiddleware(view)(request)
    assert seen["user_id"] == "-"


# --- What the console handler really writes ----------------------------------------------------


def console_handler() -> logging.Handler:
    """The StreamHandler that LOGGING["handlers"]["console"] put on the root logger."""
    handlers = [handler for handler in logging.getLogger().handlers if type(handler) is logging.StreamHandler]
    assert len(handlers) == 1, f"expected one console handler on the root logger, got {handlers!r}"
    return handlers[0]


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        lines = self.text.splitlines()
        assert lines, "nothing was logged"
        return [json.loads(line) for line in lines]


@pytest.fixture
def console_output():
    """Everything the console handler would write, formatted exactly as it would write it."""
    console = console_handler()
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(console.formatter)
    for log_filter in console.filters:
        capture.addFilter(log_filter)
    capture.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(capture)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)


def assert_well_formed(captured: Captured) -> list[dict]:
    lines = captured.lines()
    for line in lines:
        assert line.keys() >= REQUIRED_KEYS, line
        assert line["request_id"] != "-", f"logged during a request without its request ID: {line}"
    return lines


def assert_nothing_personal(captured: Captured, body: dict, *, also: tuple[str, ...] = ()) -> None:
    text = captured.text
    address = body["address"]
    personal = [
        body["email"],
        body.get("first_name"),
        body.get("last_name"),
        body.get("company_name"),
        address["street_line_1"],
        address["city"],
        address["postal_code"],
        settings.ALIGN_API_KEY,
        *also,
    ]
    for value in filter(None, personal):
        assert value not in text, f"{value!r} is in the logs"


def cookie_values(client: Client) -> tuple[str, ...]:
    """The session cookie and the CSRF token the client holds: neither may reach a log."""
    names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
    values = tuple(client.cookies[name].value for name in names if name in client.cookies)
    assert settings.SESSION_COOKIE_NAME in client.cookies
    return values


def test_console_handler_writes_json_lines_in_production():
    assert isinstance(console_handler().formatter, JsonFormatter)


@pytest.mark.django_db
@pytest.mark.parametrize("demo_id", [ADA, FALCON])
def test_successful_lookup_logs_json_with_the_customer_id_and_no_personal_data(
    staff_client, align, customer_url, demo_body, console_output, demo_id
):
    body = demo_body(demo_id)
    align.get(customer_url(demo_id), json=body)
    response = staff_client.get(f"/customers/{demo_id}/")
    assert response.status_code == 200
    lines = assert_well_formed(console_output)
    assert demo_id in console_output.text
    assert {line["request_id"] for line in lines} == {response["X-Request-ID"]}
    assert_nothing_personal(
        console_output,
        body,
        also=(*cookie_values(staff_client), body["kycs"]["kyc_flow_link"]),
    )


@pytest.mark.django_db
def test_lookup_lines_carry_the_customer_id_field(
    staff_client, align, customer_url, demo_body, console_output
):
    align.get(customer_url(ADA), json=demo_body(ADA))
    staff_client.get(f"/customers/{ADA}/")
    assert any(line["customer_id"] == ADA for line in console_output.lines())


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 404])
def test_failed_lookup_logs_json_with_the_customer_id_and_no_personal_data(
    staff_client, align, customer_url, demo_body, console_output, status
):
    body = demo_body(ADA)
    align.get(customer_url(ADA), status=status, json={"message": "no", "email": body["email"]})
    response = staff_client.get(f"/customers/{ADA}/")
    assert response.status_code >= 400
    lines = assert_well_formed(console_output)
    assert ADA in console_output.text
    assert {line["request_id"] for line in lines} == {response["X-Request-ID"]}
    assert any(line["level"] in {"WARNING", "ERROR"} for line in lines)
    assert_nothing_personal(console_output, body, also=cookie_values(staff_client))


# --- What staff type into the address: answered 4xx/5xx, logged without it ---------------------------

# The e-mails, names and phone numbers staff paste, as GET links and paths carry them.
TYPED_INTO_THE_ADDRESS = {
    "e-mail in ?customer_id=": ("/customers/?customer_id=jane.doe%40example.com", ("jane.doe",)),
    "e-mail as the path": ("/customers/jane.doe@example.com/", ("jane.doe",)),
    "name as the path": ("/customers/Jane%20Doe/", ("Jane Doe", "Jane%20Doe")),
    "phone number in ?customer_id=": ("/customers/?customer_id=%2B44+7700+900123", ("7700", "900123")),
    "non-ASCII name, no route": (
        "/customers/J%C3%B6rg%20M%C3%BCller/link-copied/",
        ("Jörg", "Müller", "J\\xf6rg", "M\\xfcller", "J%C3%B6rg"),
    ),
    "e-mail outside any route": ("/jane.doe@example.com/", ("jane.doe",)),
}


def assert_not_logged(captured: Captured, typed: tuple[str, ...]) -> None:
    """Neither in the raw text nor in any decoded JSON value (the raw text writes "ö" as "\\u00f6")."""
    decoded = "\n".join(str(value) for line in captured.lines() for value in line.values())
    for value in typed:
        assert value not in captured.text, f"{value!r} is in the logs"
        assert value not in decoded, f"{value!r} is in the logs"


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "typed"), TYPED_INTO_THE_ADDRESS.values(), ids=TYPED_INTO_THE_ADDRESS.keys())
def test_what_staff_typed_into_the_address_is_not_logged(staff_client, console_output, url, typed):
    response = staff_client.get(url)
    assert response.status_code in {400, 404}
    lines = assert_well_formed(console_output)
    assert any(line["logger"] == "django.request" for line in lines)
    assert_not_logged(console_output, typed)


@pytest.mark.django_db
def test_bad_request_line_names_the_route_instead_of_the_path(staff_client, console_output):
    staff_client.get("/customers/jane.doe@example.com/")
    warnings = [line for line in console_output.lines() if line["logger"] == "django.request"]
    assert [line["message"] for line in warnings] == ["Bad Request: /customers/<customer_ref>/"]
    assert warnings[0]["request"] == "GET /customers/<customer_ref>/"


@pytest.mark.django_db
def test_bad_request_line_keeps_only_the_query_parameter_names(staff_client, console_output):
    staff_client.get("/customers/?customer_id=jane.doe%40example.com")
    warnings = [line for line in console_output.lines() if line["logger"] == "django.request"]
    assert warnings[0]["request"] == "GET /customers/?customer_id=<redacted>"


@pytest.mark.django_db
def test_what_staff_typed_into_the_search_form_is_not_logged(staff_client, console_output):
    # Not a whole e-mail address, so refused as input; a search by e-mail is test_email_search.py's.
    response = staff_client.post("/customers/", {"customer_id": "jane.doe@example"})
    assert response.status_code == 400
    assert_well_formed(console_output)
    assert_not_logged(console_output, ("jane.doe",))


@pytest.fixture
def browser_like_client(staff_user) -> Client:
    """Signed in, checking CSRF tokens and answering a crash with the 500 page, as a browser meets them."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(staff_user)
    return client


@pytest.mark.django_db
def test_refused_csrf_check_does_not_log_the_typed_path(browser_like_client, console_output):
    """django.security.csrf logs the path too: the console handler redacts every logger's lines."""
    response = browser_like_client.post(
        "/customers/?customer_id=jane.doe%40example.com", {"customer_id": "x"}
    )
    assert response.status_code == 403
    lines = assert_well_formed(console_output)
    assert any(line["logger"] == "django.security.csrf" for line in lines)
    assert_not_logged(console_output, ("jane.doe",))


@pytest.mark.django_db
def test_traceback_of_a_crash_on_typed_input_does_not_log_it(
    browser_like_client, console_output, monkeypatch
):
    """Exceptions quote values ("“jane.doe@…” is not a valid UUID"); the traceback is redacted too."""

    def crash(request, form):
        raise ValueError(f"{form.data['customer_id']!r} is not a customer ID")

    monkeypatch.setattr("customers.views.lookup._invalid_input", crash)
    response = browser_like_client.get("/customers/?customer_id=jane.doe%40example")
    assert response.status_code == 500
    errors = [line for line in assert_well_formed(console_output) if line["level"] == "ERROR"]
    assert "ValueError: '<redacted>' is not a customer ID" in errors[0]["exc_info"]
    assert_not_logged(console_output, ("jane.doe",))


def test_django_request_records_are_redacted_before_any_handler_sees_them(rf):
    """The filter sits on the django.request logger: a handler put on that logger gets the redacted line."""
    seen = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append((record.getMessage(), str(record.request)))

    request_logger = logging.getLogger("django.request")
    collect = Collect()
    request_logger.addHandler(collect)
    try:
        request = rf.get("/customers/jane.doe@example.com/")
        request_logger.warning("Bad Request: %s", request.path, extra={"request": request})
    finally:
        request_logger.removeHandler(collect)
    assert seen == [("Bad Request: /customers/<customer_ref>/", "GET /customers/<customer_ref>/")]


def test_runserver_request_lines_reach_the_console_redacted(console_output):
    """runserver's django.server lines go through the console handler (Django's default hides them)."""
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None
    handler.requestline = "GET /customers/?customer_id=jane.doe%40example.com HTTP/1.1"
    handler.log_request(400, 5120)
    [line] = console_output.lines()
    assert line["logger"] == "django.server"
    assert line["message"] == '"GET /customers/?customer_id=<redacted> HTTP/1.1" 400 5120'


@pytest.mark.parametrize("name", ["django", "django.request", "django.server", "django.security"])
def test_django_lines_have_no_handler_of_their_own_that_would_skip_the_redaction(name):
    """Django's default debug console and mail_admins would write the whole request again."""
    assert logging.getLogger(name).handlers == []


@pytest.mark.django_db
def test_failed_login_logs_json_without_username_or_password(staff_user, console_output):
    client = Client()
    csrf_token = client.get("/accounts/login/").cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post("/accounts/login/", {"username": STAFF_USERNAME, "password": WRONG_PASSWORD})
    assert response.status_code == 200
    lines = assert_well_formed(console_output)
    assert any(line["message"] == "Sign-in failed" and line["level"] == "WARNING" for line in lines)
    for secret in (STAFF_USERNAME, WRONG_PASSWORD, csrf_token):
        assert secret not in console_output.text, f"{secret!r} is in the logs"


@pytest.mark.django_db
def test_password_typed_into_the_username_field_is_not_logged(staff_user, console_output):
    client = Client()
    client.post("/accounts/login/", {"username": STAFF_PASSWORD, "password": STAFF_PASSWORD})
    assert_well_formed(console_output)
    assert STAFF_PASSWORD not in console_output.text


@pytest.mark.django_db
def test_successful_login_logs_json_with_the_user_id_and_no_secrets(staff_user, console_output):
    client = Client()
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": STAFF_USERNAME, "password": STAFF_PASSWORD})
    assert response.status_code == 302
    lines = assert_well_formed(console_output)
    signed_in = [line for line in lines if line["message"] == "Signed in"]
    assert len(signed_in) == 1
    assert signed_in[0]["user_id"] == str(staff_user.pk)
    for secret in (
        STAFF_PASSWORD,
        response.cookies[settings.SESSION_COOKIE_NAME].value,
        response.cookies[settings.CSRF_COOKIE_NAME].value,
    ):
        assert secret not in console_output.text, f"{secret!r} is in the logs"


# --- Readable lines for development ---------------------------------------------------------------


@pytest.mark.parametrize(
    "environment",
    [PRODUCTION_LIKE | {"DASHBOARD_LOG_FORMAT": "text"}, {"DJANGO_DEBUG": "1"}],
    ids=["DASHBOARD_LOG_FORMAT=text", "DJANGO_DEBUG=1"],
)
def test_text_format_is_a_readable_line_with_the_request_context(monkeypatch, context_vars, environment):
    logging_config = load_settings(monkeypatch, **environment)["LOGGING"]
    formatter_name = logging_config["handlers"]["console"]["formatter"]
    assert formatter_name == "text"
    formatter = logging.Formatter(logging_config["formatters"][formatter_name]["format"])
    context_vars("a1b2c3d4e5f6", "42", ADA)
    line = record(msg="Align lookup ok")
    RequestContextFilter().filter(line)
    assert formatter.format(line).endswith(
        f" INFO tests [a1b2c3d4e5f6 user=42 customer={ADA}] Align lookup ok"
    )
