"""A short ID for every request, so a staff member's "it failed" can be found in the logs.

The ID is made here, never taken from the client, and travels in a context variable so code
far from the view (the Align client) can put it on its log lines without being passed it.
"""

import contextvars
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("current_request_id", default="-")


def new_request_id() -> str:
    return secrets.token_hex(6)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = new_request_id()
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response
