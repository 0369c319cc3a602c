"""The address a request came from, for the audit trail, lockouts and logs."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address a request came from, believing X-Forwarded-For only from trusted proxies.

    Walks the forwarded chain from the right (the hop nearest us) past trusted proxies; the
    first address not in DASHBOARD_TRUSTED_PROXIES is the client. A forged header from a
    client that is not a trusted proxy is ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = set(settings.DASHBOARD_TRUSTED_PROXIES)
    if remote not in trusted:
        return remote
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(forwarded):
        if hop in trusted:
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:
            return remote
    return remote
