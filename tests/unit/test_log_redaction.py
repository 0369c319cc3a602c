"""Paths and query strings in log lines become routes and parameter names (dashboard/ops/log_redaction.py).

The end-to-end tests, real requests read back from the console handler's output, are in
tests/unit/test_log_context.py; these pin down each rule, the runserver lines and gunicorn's access log.
"""

import io
import json
import logging
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.servers.basehttp import WSGIRequestHandler
from gunicorn.config import Config
from pythonjsonlogger.json import JsonFormatter

from dashboard.ops import log_redaction
from dashboard.ops.gunicorn_logging import RedactingLogger
from dashboard.ops.log_redaction import (
    WITHHELD_MESSAGE,
    RedactRequestFilter,
    redact_path,
    redact_query,
    redact_target,
    redact_url,
)

EMAIL = "jane.doe@example.com"
ADA = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f7e91"


def request_record(request, msg="%s: %s", args=None, **extra) -> logging.LogRecord:
    """A record shaped as django.utils.log.log_response makes it."""
    return logging.makeLogRecord(
        {
            "name": "django.request",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": msg,
            "args": args if args is not None else ("Bad Request", request.path),
            "request": request,
            "status_code": 400,
            **extra,
        }
    )


def redacted(record: logging.LogRecord) -> logging.LogRecord:
    assert RedactRequestFilter().filter(record) is True
    return record


def as_json(record: logging.LogRecord) -> str:
    return JsonFormatter(["levelname", "name", "message"]).format(record)


# --- Paths, queries, URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/customers/{EMAIL}/", "/customers/<customer_ref>/"),
        (f"/customers/{ADA}/link-copied/", "/customers/<customer_id>/link-copied/"),
        ("/admin/auth/user/7/change/", "/admin/auth/user/<object_id>/change/"),
        ("/customers/", "/customers/"),
        ("/", "/"),
    ],
)
def test_a_path_that_matches_a_route_is_written_as_the_route(path, expected):
    assert redact_path(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/customers/Jane Doe/extra/", "/customers/<redacted>/<redacted>/"),
        (f"/{EMAIL}/", "/<redacted>/"),
        ("/admin/jane/doe", "/admin/<redacted>/<redacted>"),
    ],
)
def test_a_path_that_matches_no_route_keeps_only_the_words_of_our_urls(path, expected):
    assert redact_path(path) == expected


def test_a_query_keeps_its_parameter_names_only():
    assert (
        redact_query("customer_id=jane.doe%40example.com&refresh=1")
        == "customer_id=<redacted>&refresh=<redacted>"
    )


@pytest.mark.parametrize("typed", ["jane.doe%40example.com", "JaneDoe", "Jane+Doe"])
def test_a_query_parameter_name_that_is_not_one_of_ours_is_hidden_too(typed):
    assert redact_query(f"{typed}&refresh=1") == "<redacted>=<redacted>&refresh=<redacted>"


def test_a_request_target_is_redacted_path_and_query():
    target = "/customers/Jane%20Doe/?customer_id=%2B44%207700%20900123"
    assert redact_target(target) == "/customers/<customer_ref>/?customer_id=<redacted>"


def test_a_referer_keeps_its_origin():
    url = "https://kyc.example/customers/?customer_id=jane.doe%40example.com"
    assert redact_url(url) == "https://kyc.example/customers/?customer_id=<redacted>"


# --- The filter on records that carry a Django request ----------------------------------------------


def test_the_message_names_the_route_instead_of_the_path(rf):
    record = redacted(request_record(rf.get(f"/customers/{EMAIL}/")))
    assert record.getMessage() == "Bad Request: /customers/<customer_ref>/"


def test_the_request_attribute_becomes_the_redacted_target_in_json(rf):
    request = rf.get("/customers/", {"customer_id": EMAIL})
    line = json.loads(as_json(redacted(request_record(request))))
    assert line["request"] == "GET /customers/?customer_id=<redacted>"


def test_the_request_id_stays_on_the_record_for_the_context_filter(rf):
    request = rf.get(f"/customers/{EMAIL}/")
    request.request_id = "0badc0ffee00"
    assert redacted(request_record(request)).request.request_id == "0badc0ffee00"


def test_a_non_ascii_path_is_hidden_in_the_escaped_form_django_logs_it_in(rf):
    request = rf.get("/customers/jörg.müller/extra/")
    escaped = request.path.encode("unicode_escape").decode("ascii")
    record = redacted(request_record(request, args=("Not Found", escaped)))
    assert record.getMessage() == "Not Found: /customers/<redacted>/<redacted>/"


def test_a_traceback_that_quotes_the_typed_text_is_redacted(rf):
    request = rf.get("/customers/", {"customer_id": EMAIL})
    try:
        raise ValueError(f"“{EMAIL}” is not a valid UUID (from {request.get_full_path()})")
    except ValueError:
        record = request_record(
            request, args=("Internal Server Error", request.path), exc_info=sys.exc_info()
        )
    line = json.loads(as_json(redacted(record)))
    assert (
        "ValueError: “<redacted>” is not a valid UUID (from /customers/?customer_id=<redacted>)"
        in line["exc_info"]
    )
    assert "jane.doe" not in json.dumps(line)


def test_redacting_twice_changes_nothing(rf):
    record = redacted(request_record(rf.get(f"/customers/{EMAIL}/")))
    message, request = record.getMessage(), str(record.request)
    redacted(record)
    assert (record.getMessage(), str(record.request)) == (message, request)


def test_records_without_a_request_are_left_alone():
    record = redacted(
        logging.makeLogRecord({"name": "customers.align.client", "msg": "Align answered %s", "args": (503,)})
    )
    assert record.getMessage() == "Align answered 503"


def test_a_redaction_that_fails_withholds_the_line(rf, monkeypatch):
    def broken(path_info):
        raise RuntimeError(path_info)

    monkeypatch.setattr(log_redaction, "_redact_path", broken)
    record = redacted(request_record(rf.get(f"/customers/{EMAIL}/")))
    assert record.getMessage() == WITHHELD_MESSAGE
    assert EMAIL not in as_json(record)


# --- runserver's request lines (django.server) ---------------------------------------------------


@pytest.fixture
def runserver_records():
    """What runserver's own request handler logs, as the django.server logger's filters leave it."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    collect = Collect()
    server_logger = logging.getLogger("django.server")
    server_logger.addHandler(collect)
    try:
        yield records
    finally:
        server_logger.removeHandler(collect)


def runserver_handler(request_line: str) -> WSGIRequestHandler:
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None
    handler.requestline = request_line
    return handler


def test_runserver_request_line_names_the_route_and_the_parameter_names(runserver_records):
    runserver_handler("GET /customers/?customer_id=jane.doe%40example.com HTTP/1.1").log_request(400, 5120)
    assert runserver_records[0].getMessage() == '"GET /customers/?customer_id=<redacted> HTTP/1.1" 400 5120'


def test_runserver_request_line_with_a_typed_path_names_the_route(runserver_records):
    runserver_handler("GET /customers/jane.doe@example.com/ HTTP/1.1").log_request(302, 0)
    assert runserver_records[0].getMessage() == '"GET /customers/<customer_ref>/ HTTP/1.1" 302 0'


def test_runserver_error_lines_that_may_quote_the_request_are_hidden(runserver_records):
    handler = runserver_handler("GET /jane doe HTTP/1.1")
    handler.log_error("code %d, message %s", 400, "Bad request syntax ('GET /jane doe HTTP/1.1')")
    assert runserver_records[0].getMessage() == "code 400, message <redacted>"


# --- gunicorn's access log ---------------------------------------------------------------------------


@pytest.fixture
def gunicorn_access_log():
    """gunicorn's logger with this project's logger_class, writing its access log into a buffer."""

    def write(access_log_format: str | None = None, **environ) -> str:
        config = Config()
        config.set("accesslog", "-")
        if access_log_format:
            config.set("access_log_format", access_log_format)
        logger = RedactingLogger(config)
        buffer = io.StringIO()
        access_handler = next(
            handler for handler in logger.access_log.handlers if getattr(handler, "_gunicorn", False)
        )
        access_handler.setStream(buffer)
        environ = {
            "REQUEST_METHOD": "GET",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "10.0.0.9",
            **environ,
        }
        headers = [
            (name[5:].replace("_", "-"), value) for name, value in environ.items() if name.startswith("HTTP_")
        ]
        response = SimpleNamespace(status="400 Bad Request", sent=512, headers=[])
        logger.access(response, SimpleNamespace(headers=headers), environ, timedelta(milliseconds=3))
        return buffer.getvalue()

    yield write
    for name in ("gunicorn.access", "gunicorn.error"):
        gunicorn_logger = logging.getLogger(name)
        for handler in list(gunicorn_logger.handlers):
            if getattr(handler, "_gunicorn", False):
                gunicorn_logger.removeHandler(handler)


TYPED_REQUEST = {
    "RAW_URI": "/customers/jane.doe%40example.com/?customer_id=Jane+Doe",
    "PATH_INFO": "/customers/jane.doe@example.com/",
    "QUERY_STRING": "customer_id=Jane+Doe",
    "HTTP_REFERER": "https://kyc.example/customers/?customer_id=%2B44+7700+900123",
    "HTTP_HX_CURRENT_URL": "https://kyc.example/customers/?customer_id=jane.doe%40example.com",
}


def test_gunicorn_default_access_format_shows_routes_and_parameter_names(gunicorn_access_log):
    line = gunicorn_access_log(**TYPED_REQUEST)
    assert '"GET /customers/<customer_ref>/?customer_id=<redacted> HTTP/1.1" 400 512' in line
    assert '"https://kyc.example/customers/?customer_id=<redacted>"' in line


@pytest.mark.parametrize(
    "atom",
    [
        *("%(r)s", "%(U)s", "%(q)s", "%(f)s", "%({raw_uri}e)s", "%({path_info}e)s", "%({query_string}e)s"),
        *("%({referer}i)s", "%({http_referer}e)s", "%({hx-current-url}i)s", "%({http_hx_current_url}e)s"),
    ],
)
def test_gunicorn_access_atoms_never_carry_what_was_typed(gunicorn_access_log, atom):
    line = gunicorn_access_log(atom, **TYPED_REQUEST)
    assert line.strip() not in {"", "-"}
    for typed in ("jane.doe", "Jane", "7700"):
        assert typed not in line


def test_gunicorn_redaction_that_fails_hides_the_address(gunicorn_access_log, monkeypatch):
    def broken(path_info):
        raise RuntimeError(path_info)

    monkeypatch.setattr("dashboard.ops.gunicorn_logging.redact_path", broken)
    line = gunicorn_access_log("%(r)s %(U)s", **TYPED_REQUEST)
    assert line.strip() == "GET <redacted> HTTP/1.1 <redacted>"
