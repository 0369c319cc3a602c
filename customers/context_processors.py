"""Which Align environment the dashboard talks to, on every page, so no one mistakes one for another."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True)
class Upstream:
    label: str
    tone: str  # production, sandbox, local, custom
    host: str

    @property
    def is_local(self) -> bool:
        return self.tone == "local"


def describe_upstream(base_url: str) -> Upstream:
    host = urlsplit(base_url).hostname or base_url
    if base_url == settings.ALIGN_PRODUCTION_URL:
        return Upstream("Production", "production", host)
    if base_url == settings.ALIGN_SANDBOX_URL:
        return Upstream("Sandbox", "sandbox", host)
    if host in {"127.0.0.1", "localhost", "::1"}:
        return Upstream("Local stand-in", "local", host)
    return Upstream(f"Custom: {host}", "custom", host)


def upstream(request: HttpRequest) -> dict[str, Upstream]:
    return {"upstream": describe_upstream(settings.ALIGN_API_BASE_URL)}
