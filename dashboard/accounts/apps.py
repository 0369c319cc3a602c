from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in, two-factor and sessions: an app for its template tags, its command and its receivers."""

    name = "dashboard.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Django's documented place to connect receivers: once, after every app is loaded.
        from dashboard.accounts import signals  # noqa: F401
        from dashboard.accounts.sso.provider import readiness_check
        from dashboard.ops.health import register_readiness_check

        register_readiness_check("identity_provider", readiness_check)
