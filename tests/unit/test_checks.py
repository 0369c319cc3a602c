"""System checks warn about a dashboard that cannot look anybody up."""

from customers.checks import align_api_key_configured


def test_missing_api_key_is_a_warning(settings):
    settings.ALIGN_API_KEY = ""
    assert [message.id for message in align_api_key_configured(None)] == ["customers.W001"]


def test_configured_api_key_passes(settings):
    settings.ALIGN_API_KEY = "configured"
    assert align_api_key_configured(None) == []
