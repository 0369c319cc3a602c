"""What a log line may say about a request: its route, never what someone typed into the address.

Staff paste e-mails, names and phone numbers into the lookup box; a GET `?customer_id=` link or
a `/customers/<anything>/` path carries them into the URL, and Django's `django.request` logger
(every 4xx and 5xx), runserver's `django.server` and gunicorn's access log write URLs out. Here
a path becomes its route ("/customers/<customer_ref>/"), or, when it matches no route, the path
with every segment that is not a word of our URL configuration replaced by "<redacted>"; a
query keeps its parameter names only ("?customer_id=<redacted>").
"""

import functools
import logging
import re
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.encoding import escape_uri_path

HIDDEN = "<redacted>"
# Typed values shorter than this are not searched for in free text (tracebacks): replacing
# every "1" or "ab" would garble the line and protect nothing.
SHORTEST_TYPED_VALUE = 3
WITHHELD_MESSAGE = "(log line withheld: its request could not be redacted)"
# Our parameters and the admin's are lower-case names ("customer_id", "user__id__exact", "_popup").
PARAMETER_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
REGEX_SYNTAX = re.compile(r"[\\^$()\[\]*+?|{}]")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
RUNSERVER_ACCESS_FORMAT = '"%s" %s %s'


class RedactedRequest:
    """Stands in for the request on a log record: the method, the redacted target, the request ID.

    The JSON formatter writes every extra attribute of a record, the request included, so the
    real request (whose repr is the whole URL) must not stay there.
    """

    def __init__(self, method: str, target: str, request_id: str = "-") -> None:
        self.method = method
        self.target = target
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.method} {self.target}"

    __repr__ = __str__


def redact_path(path_info: str) -> str:
    """The route a path matched ("/customers/<customer_ref>/"), or the path with typed parts hidden."""
    return _redact_path(path_info)[0]


def redact_query(query_string: str) -> str:
    """The parameter names of a query string, without their values: "customer_id=<redacted>"."""
    return _redact_query(query_string)[0]


def redact_target(target: str) -> str:
    """A request target as sent (percent-encoded path, then perhaps "?" and a query), redacted."""
    path, _, query = target.partition("?")
    redacted = redact_path(unquote(path))
    query = redact_query(query)
    return f"{redacted}?{query}" if query else redacted


def redact_url(url: str) -> str:
    """A whole URL (a Referer) with its path and query redacted; the origin stays."""
    if url in {"", "-"}:
        return url
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return origin + redact_target(target)


class RedactRequestFilter(logging.Filter):
    """Puts the redacted route in place of the path and query on every record about a request.

    Covers the message and its arguments, the `request` attribute Django attaches (which the
    JSON formatter would write), and the traceback text. Records of `django.request` and others
    carrying a Django request are handled, and runserver's `django.server` lines, whose request
    line is an argument. Redacting twice changes nothing, so the filter can sit on a logger and
    on a handler at once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _redact_record(record)
        except Exception:
            # A redactor that fails must withhold the line, not let it through as it was.
            _withhold(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    request = getattr(record, "request", None)
    if isinstance(request, HttpRequest):
        replacements, stand_in = _request_replacements(request)
        _rewrite_text(record, replacements)
        record.request = stand_in
    elif record.name == "django.server" and not isinstance(request, RedactedRequest):
        _redact_runserver_line(record)


def _request_replacements(request: HttpRequest) -> tuple[dict[str, str], RedactedRequest]:
    """Every form in which this request's path, query and typed values may appear, and what replaces it."""
    redacted_path, typed_in_path = _redact_path(request.path_info)
    redacted_path = request.path.removesuffix(request.path_info) + redacted_path
    query_string = request.META.get("QUERY_STRING", "")
    redacted_query, typed_in_query = _redact_query(query_string)
    redacted_full_path = f"{redacted_path}?{redacted_query}" if redacted_query else redacted_path
    typed_values = typed_in_path + typed_in_query

    replacements = {value: HIDDEN for value in typed_values if len(value) >= SHORTEST_TYPED_VALUE}
    for form in (query_string, unquote_plus(query_string)):
        replacements[form] = redacted_query
    for form in (request.path, request.path_info, escape_uri_path(request.path)):
        replacements[form] = redacted_path
    replacements[request.get_full_path()] = redacted_full_path
    # Django escapes non-ASCII and control characters in the path it logs.
    replacements |= {_escaped(secret): shown for secret, shown in replacements.items()}
    replacements = {secret: shown for secret, shown in replacements.items() if secret and secret != shown}
    stand_in = RedactedRequest(request.method or "-", redacted_full_path, getattr(request, "request_id", "-"))
    return replacements, stand_in


def _rewrite_text(record: logging.LogRecord, replacements: dict[str, str]) -> None:
    if not replacements:
        return
    longest_first = sorted(replacements, key=len, reverse=True)
    secrets = re.compile("|".join(re.escape(secret) for secret in longest_first))

    def scrub(text: str) -> str:
        return secrets.sub(lambda match: replacements[match.group()], text)

    record.msg = scrub(record.getMessage())
    record.args = None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        # The JSON formatter formats exc_info itself; without it, it writes exc_text.
        record.exc_info = None
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def _redact_runserver_line(record: logging.LogRecord) -> None:
    """runserver logs '"GET /path?query HTTP/1.1" 400 1234', the request line as the first argument."""
    args = record.args if isinstance(record.args, tuple) else ()
    if record.msg == RUNSERVER_ACCESS_FORMAT and len(args) == 3 and isinstance(args[0], str):
        method, _, rest = args[0].partition(" ")
        target, _, version = rest.rpartition(" ")
        if version.startswith("HTTP/") and " " not in target:
            record.request = RedactedRequest(method, redact_target(target))
            record.args = (f"{method} {record.request.target} {version}", *args[1:])
        else:
            record.request = RedactedRequest("-", HIDDEN)
            record.args = (HIDDEN, *args[1:])
        return
    # Its other lines ("code 400, message Bad request syntax ('GET /…')") may quote the request.
    record.args = tuple(HIDDEN if isinstance(arg, str) else arg for arg in args) or None
    record.request = RedactedRequest("-", HIDDEN)


def _withhold(record: logging.LogRecord) -> None:
    record.msg = WITHHELD_MESSAGE
    record.args = None
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    request_id = getattr(getattr(record, "request", None), "request_id", "-")
    record.request = RedactedRequest("-", HIDDEN, request_id)


def _escaped(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def _redact_query(query_string: str) -> tuple[str, list[str]]:
    """The query with its values hidden, and the typed values (and odd names) it hid."""
    shown, typed = [], []
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        typed.append(value)
        if not PARAMETER_NAME.fullmatch(name):
            typed.append(name)
            name = HIDDEN
        shown.append(f"{name}={HIDDEN}")
    return "&".join(shown), typed


def _redact_path(path_info: str) -> tuple[str, list[str]]:
    """The redacted path, and the typed parts it hid (to search for in tracebacks)."""
    try:
        match = resolve(path_info)
    except Resolver404:
        match = None
    if match is not None and match.route is not None and not REGEX_SYNTAX.search(match.route):
        typed = [str(value) for value in (*match.args, *match.kwargs.values())]
        return "/" + CONVERTER.sub(r"<\1>", match.route), typed
    known = _literal_segments(get_resolver())
    segments = path_info.split("/")
    typed = [segment for segment in segments if segment and segment not in known]
    return "/".join(HIDDEN if segment in typed else segment for segment in segments), typed


@functools.lru_cache(maxsize=4)
def _literal_segments(resolver: URLResolver) -> frozenset[str]:
    """Every fixed word of the URL configuration ("customers", "admin", "change"), and the static prefix."""
    words = set(filter(None, urlsplit(settings.STATIC_URL).path.split("/")))
    pending = list(resolver.url_patterns)
    while pending:
        entry = pending.pop()
        if isinstance(entry.pattern, RoutePattern):
            text = str(entry.pattern)
        elif isinstance(entry.pattern, RegexPattern):
            text = str(entry.pattern).strip("^$")
        else:
            text = ""
        words.update(word for word in text.split("/") if LITERAL_SEGMENT.fullmatch(word))
        if isinstance(entry, URLResolver):
            pending.extend(entry.url_patterns)
    return frozenset(words)
