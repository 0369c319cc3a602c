"""Where a user goes once verified: the `next` address the hold and the two-factor pages pass along."""

from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def with_next(url: str, next_url: str | None) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def safe_next(request: HttpRequest) -> str | None:
    """The `next` this request carries, if it stays on this site."""
    next_url = request.POST.get("next") or request.GET.get("next")
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return None


def destination(request: HttpRequest) -> str:
    return safe_next(request) or reverse("customers:search")
