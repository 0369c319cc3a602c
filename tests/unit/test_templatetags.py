"""The template filters of customers/templatetags/kyc.py that the recent lookups list uses."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template

from customers.models import AuditEvent
from customers.services import decisions as presentation
from customers.templatetags.kyc import seen_status_badge, when_short

# 21:30 on 24 November in UTC is already 01:30 on 25 November in Dubai (UTC+4).
NOW = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
DUBAI = ZoneInfo("Asia/Dubai")


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


@pytest.mark.parametrize(
    ("time_zone", "moment", "shown"),
    [
        pytest.param("UTC", datetime(2026, 11, 24, 9, 5, tzinfo=UTC), "09:05", id="utc-today"),
        pytest.param("UTC", datetime(2026, 11, 23, 23, 59, tzinfo=UTC), "23 Nov 23:59", id="utc-yesterday"),
        pytest.param("UTC", datetime(2026, 11, 3, 14, 2, tzinfo=UTC), "3 Nov 14:02", id="day-not-padded"),
        pytest.param("UTC", datetime(2025, 12, 31, 8, 0, tzinfo=UTC), "31 Dec 08:00", id="last-year"),
        # Past midnight in Dubai: 20:30 UTC on the 24th is 00:30 on the 25th there, i.e. today.
        pytest.param(
            "Asia/Dubai", datetime(2026, 11, 24, 20, 30, tzinfo=UTC), "00:30", id="dubai-today-utc-yesterday"
        ),
        pytest.param(
            "Asia/Dubai", datetime(2026, 11, 24, 19, 59, tzinfo=UTC), "24 Nov 23:59", id="dubai-yesterday"
        ),
        pytest.param(
            "Asia/Dubai", datetime(2026, 11, 25, 1, 0, tzinfo=DUBAI), "01:00", id="dubai-aware-input"
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
            "16:00",
            id="new-york-today",
        ),
    ],
)
def test_when_short_is_the_time_today_and_the_day_before(settings, time_zone, moment, shown):
    settings.TIME_ZONE = time_zone
    assert when_short(moment) == shown


def test_when_short_follows_a_change_of_time_zone(settings):
    moment = datetime(2026, 11, 24, 20, 30, tzinfo=UTC)
    settings.TIME_ZONE = "UTC"
    assert when_short(moment) == "20:30"
    settings.TIME_ZONE = "Asia/Dubai"
    assert when_short(moment) == "00:30"


def test_when_short_in_a_template(settings):
    settings.TIME_ZONE = "UTC"
    rendered = Template("{% load kyc %}{{ moment|when_short }}").render(
        Context({"moment": datetime(2026, 11, 20, 7, 45, tzinfo=UTC)})
    )
    assert rendered == "20 Nov 07:45"


@pytest.mark.parametrize(
    ("outcome", "kyc_status"),
    [
        (AuditEvent.Outcome.FOUND, "approved"),
        (AuditEvent.Outcome.FOUND, "pending"),
        (AuditEvent.Outcome.FOUND, ""),
        (AuditEvent.Outcome.FOUND, "approved_later"),
        (AuditEvent.Outcome.NOT_FOUND, ""),
        (AuditEvent.Outcome.STARTED, ""),
        (AuditEvent.Outcome.RATE_LIMITED, ""),
    ],
)
def test_seen_status_badge_filter_delegates_to_presentation(outcome, kyc_status):
    event = AuditEvent(outcome=outcome, kyc_status=kyc_status)
    assert seen_status_badge(event) == presentation.seen_status_badge(outcome, kyc_status)


def test_seen_status_badge_renders_as_a_badge_in_words():
    event = AuditEvent(outcome=AuditEvent.Outcome.FOUND, kyc_status="rejected")
    rendered = Template("{% load kyc %}{% badge event|seen_status_badge %}").render(Context({"event": event}))
    assert rendered == (
        '<span class="badge badge-rejected"><span class="badge-dot" aria-hidden="true"></span>Rejected</span>'
    )


def test_seen_status_badge_marks_and_escapes_an_unrecognised_status():
    event = AuditEvent(outcome=AuditEvent.Outcome.FOUND, kyc_status="<b>odd</b>")
    rendered = Template("{% load kyc %}{% badge event|seen_status_badge %}").render(Context({"event": event}))
    assert "&lt;b&gt;odd&lt;/b&gt;" in rendered
    assert "<b>" not in rendered
    assert "unrecognised" in rendered
