"""Who and what a log line is about: the request ID, the user ID and the customer ID.

They travel in context variables, so every line logged while a request is handled carries
them, whichever module logs it, without being passed along. IDs only: never a name, an e-mail
or an address, so the logs can be read without exposing customers or staff.
"""

import contextvars
import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from dashboard.ops.request_id import current_request_id

current_user_id: contextvars.ContextVar[str] = contextvars.ContextVar("current_user_id", default="-")
current_customer_id: contextvars.ContextVar[str] = contextvars.ContextVar("current_customer_id", default="-")


def bind_customer(customer_id: object) -> None:
    """Put the customer ID on every further log line of this request."""
    current_customer_id.set(str(customer_id))


class RequestContextFilter(logging.Filter):
    """Adds request_id, user_id and customer_id to every record, unless it carries its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in (
            ("request_id", current_request_id),
            ("user_id", current_user_id),
            ("customer_id", current_customer_id),
        ):
            if not hasattr(record, name):
                setattr(record, name, variable.get())
        # Django logs a 4xx/5xx answer ("Not Found: /customers/…") after the middleware has
        # reset the context, but hands the request along: take its request ID from there.
        if record.request_id == "-":
            record.request_id = getattr(getattr(record, "request", None), "request_id", "-")
        return True


class LogContextMiddleware:
    """Binds the signed-in user's ID for the request; runs after authentication."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        user_id = str(user.pk) if user is not None and user.is_authenticated else "-"
        user_token = current_user_id.set(user_id)
        customer_token = current_customer_id.set("-")
        try:
            return self.get_response(request)
        finally:
            current_customer_id.reset(customer_token)
            current_user_id.reset(user_token)
