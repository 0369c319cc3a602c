from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The project itself, as an app only so its sign-in log receivers are connected once."""

    name = "dashboard"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from dashboard import security

        user_logged_in.connect(security.log_signed_in, dispatch_uid="dashboard-signed-in")
        user_logged_out.connect(security.log_signed_out, dispatch_uid="dashboard-signed-out")
        user_login_failed.connect(security.log_sign_in_failed, dispatch_uid="dashboard-sign-in-failed")
        user_locked_out.connect(security.log_locked_out, dispatch_uid="dashboard-locked-out")
