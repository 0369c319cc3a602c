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
from django.test import Client
from pythonjsonlogger.json import JsonFormatter

from customers.stub import DemoId
from dashboard.log_context import (
    LogContextMiddleware,
    RequestContextFilter,
    bind_customer,
    current_customer_id,
    current_user_id,
)
from dashboard.request_id import current_request_id
from tests.conftest import STAFF_PASSWORD, STAFF_USERNAME
from tests.test_settings import PRODUCTION_LIKE, load_settings

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
