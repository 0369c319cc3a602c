from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from customers.views import webhooks as webhook_views
from dashboard.accounts import sessions, sign_in
from dashboard.accounts.sso import views as sso_views
from dashboard.accounts.two_factor import views as two_factor
from dashboard.ops import health, metrics

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="customers:search", permanent=False)),
    path("customers/", include("customers.urls")),
    path("accounts/login/", sign_in.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # Single sign-on (docs/single-sign-on.md): 404 while DASHBOARD_OIDC_ISSUER is unset.
    path("accounts/sso/start/", sso_views.SignInStartView.as_view(), name="sso_start"),
    path("accounts/sso/callback/", sso_views.SignInCallbackView.as_view(), name="sso_callback"),
    path("accounts/logout/", sessions.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/setup/", two_factor.setup, name="two_factor_setup"),
    path("accounts/two-factor/verify/", two_factor.verify, name="two_factor_verify"),
    path(
        "accounts/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two_factor_recovery_codes",
    ),
    path("admin/", admin.site.urls),
    # Align's deliveries: no login, no CSRF; the signature authenticates (customers/views/webhooks.py).
    path("webhooks/align/", webhook_views.align_webhook, name="align_webhook"),
    # For the orchestrator and Prometheus: answered by dashboard.ops.health.ProbeMiddleware, before
    # sessions and login. No trailing slash, as probes are usually written.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]

# An error raised by a middleware while the database or Redis is out is a 503 saying so, not a 500.
handler500 = "dashboard.ops.server_error.server_error"
