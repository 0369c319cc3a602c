"""The one gate in front of the pages that need a permission: sign in first, then hold the permission.

One decorator rather than Django's LoginRequiredMiddleware: the permission needs a check per view
anyway, and the middleware would make every other address (the webhook receiver, the probes, the
login page itself) opt out of it. Nor Django's permission_required: it sends a signed-in user
without the permission back to the login page (or, told to refuse, refuses the signed-out too),
and answers an htmx request with a redirect that would land the login page inside the card.
"""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_htmx.http import HttpResponseClientRedirect

View = Callable[..., HttpResponse]

IDLE_SESSION_ENDED_MESSAGE = (
    "Your session ended after {minutes} minutes without activity. Log in again to continue."
)


def login_redirect(request: HttpRequest, *, to_requested_page: bool = False) -> HttpResponse:
    """To the login page, coming back here afterwards.

    An htmx request gets a client-side redirect, so the login page replaces the whole page
    instead of appearing inside the result card, and comes back to the page, not the fragment:
    the page the request asked for when it is one (`to_requested_page`, a link to a customer
    clicked after the session ended), else the page it was sent from.
    """
    if request.htmx:
        if to_requested_page and request.method == "GET":
            return_to = request.path
        else:
            return_to = urlsplit(request.htmx.current_url or "").path or request.get_full_path()
        return HttpResponseClientRedirect(redirect_to_login(return_to)["Location"])
    return redirect_to_login(request.get_full_path())


def _say_the_session_ended(request: HttpRequest) -> None:
    """A session cookie without a session: it idled out, so the login page says so (once).

    After a logout there is no cookie, and the 12-hour limit says its own words.
    """
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        message = IDLE_SESSION_ENDED_MESSAGE.format(minutes=settings.DASHBOARD_SESSION_IDLE_MINUTES)
        messages.info(request, message)


def permission_required(permission: str, refusal: str, *, page: bool = False) -> Callable[[View], View]:
    """Send the signed-out to the login page; refuse the signed-in without `permission` (403).

    `refusal` is the message of the PermissionDenied, naming what the permission allows. `page`:
    the view's GET is a page of its own, so a sign-in it asked for comes back to it.
    """

    def gate(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                _say_the_session_ended(request)
                return login_redirect(request, to_requested_page=page)
            if not request.user.has_perm(permission):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return guarded

    return gate
