"""Who may look customers up: active users holding `customers.lookup_customer`."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

LOOKUP_PERMISSION = "customers.lookup_customer"


def lookup_permission_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send anonymous users to the login page and refuse (403) those without the permission.

    An htmx request from a page whose session has expired gets a client-side redirect, so the
    login page replaces the whole page instead of appearing inside the result card.
    """

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.htmx:
                return_to = urlsplit(request.htmx.current_url or "").path or request.get_full_path()
                login = redirect_to_login(return_to, resolve_url(settings.LOGIN_URL))
                return HttpResponseClientRedirect(login["Location"])
            return redirect_to_login(request.get_full_path())
        if not request.user.has_perm(LOOKUP_PERMISSION):
            raise PermissionDenied("Customer lookups need the customers.lookup_customer permission.")
        return view(request, *args, **kwargs)

    return guarded
