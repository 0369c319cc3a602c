"""Settings for KYC Desk.

Every environment variable the dashboard reads is read here, once, through the small typed
helpers below, and listed in the README's configuration table with its default.
"""

import ipaddress
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from dashboard import __version__

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}.")


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds; got {raw!r}.") from None
    if not 0 < value <= 120:
        raise ImproperlyConfigured(f"{name} must be more than 0 and at most 120 seconds; got {raw!r}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_positive_int(name: str, default: int, *, maximum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {raw!r}.") from None
    if not 0 < value <= maximum:
        raise ImproperlyConfigured(f"{name} must be between 1 and {maximum}; got {raw!r}.")
    return value


def env_http_url(name: str, default: str) -> str:
    value = env_str(name, default).rstrip("/")
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed "[" around an IPv6 address
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be an http(s) URL such as {default}; got {value!r}.")
    return value


def is_loopback_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def env_secret_carrying_url(name: str, default: str, *, carries: str) -> str:
    """An http(s) URL that secrets travel to (`carries` says which): plain http only to this machine."""
    value = env_http_url(name, default)
    parts = urlsplit(value)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ImproperlyConfigured(
            f"{name} must be an https:// URL: plain http:// would send {carries} in clear text. "
            f"http:// is accepted only for this machine (localhost, 127.0.0.1, [::1]); got {value!r}."
        )
    return value


def env_api_url(name: str, default: str) -> str:
    """Align's base URL, which the API key is sent to."""
    return env_secret_carrying_url(name, default, carries="the API key")


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))"), '
            "or set DJANGO_DEBUG=1 for local development only."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105  (debug only; never in production)

# The key of the audit trail's e-mail hashes (docs/security.md, "Searches by e-mail"). Its own secret, not
# SECRET_KEY: rotating the secret key must not make past searches unfindable, and the other way round.
DASHBOARD_AUDIT_HASH_KEY = env_str("DASHBOARD_AUDIT_HASH_KEY")
if not DASHBOARD_AUDIT_HASH_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DASHBOARD_AUDIT_HASH_KEY is not set. Set it to a long random value, kept as safe as the "
            'audit log itself (python -c "import secrets; print(secrets.token_urlsafe(50))"), '
            "or set DJANGO_DEBUG=1 for local development only."
        )
    DASHBOARD_AUDIT_HASH_KEY = "kyc-desk-audit-hash-local-development-only"  # debug only; never in production

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

# --- Align Customers API -------------------------------------------------------------------
ALIGN_PRODUCTION_URL = "https://api.alignlabs.dev"
ALIGN_SANDBOX_URL = "https://api-sandbox.alignlabs.dev"
ALIGN_API_BASE_URL = env_api_url("ALIGN_API_BASE_URL", ALIGN_SANDBOX_URL)
ALIGN_API_KEY = env_str("ALIGN_API_KEY")
ALIGN_API_KEY_HEADER = env_str("ALIGN_API_KEY_HEADER", "Api-Key")
if not re.fullmatch(r"[A-Za-z0-9-]+", ALIGN_API_KEY_HEADER):
    raise ImproperlyConfigured(
        f"ALIGN_API_KEY_HEADER must be an HTTP header name; got {ALIGN_API_KEY_HEADER!r}."
    )
ALIGN_API_TIMEOUT = env_seconds("ALIGN_API_TIMEOUT", 10.0)
# How many customers of one bulk lookup are fetched at once (docs/staff-guide.md, "Bulk lookup").
ALIGN_BULK_CONCURRENCY = env_positive_int("ALIGN_BULK_CONCURRENCY", 8, maximum=32)
DASHBOARD_USER_AGENT = f"KYC-Desk/{__version__}"

# --- Align's webhooks and pages that update themselves (docs/operations.md, "Receiving Align's webhooks")
# POST /webhooks/align/ answers 404 until this is on: an address nobody registered stays shut.
ALIGN_WEBHOOKS_ENABLED = env_bool("ALIGN_WEBHOOKS_ENABLED", False)
# Align signs deliveries with the company's API key. While a new key is rolled out, deliveries
# signed with the one it replaces are still believed; unset this once the switch is done.
ALIGN_WEBHOOK_PREVIOUS_API_KEY = env_str("ALIGN_WEBHOOK_PREVIOUS_API_KEY")
# Deliveries per source address per minute, counted in the default cache (shared through Redis).
ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE = env_positive_int(
    "ALIGN_WEBHOOK_RATE_LIMIT_PER_MINUTE", 300, maximum=100_000
)
# An open page of a pending customer asks our server for newer webhooks this often; without
# webhooks it asks Align itself, less often and for a limited time (customers/services/history.py).
DASHBOARD_WATCH_POLL_SECONDS = 10
DASHBOARD_FALLBACK_POLL_SECONDS = 60
DASHBOARD_FALLBACK_POLL_MINUTES = 30

# --- Django ---------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "dashboard.accounts",
    "customers",
]

MIDDLEWARE = [
    # First, so the latency it records (dashboard/ops/metrics.py) covers the whole stack.
    "dashboard.ops.metrics.RequestMetricsMiddleware",
    "dashboard.ops.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /healthz, /readyz and /metrics are answered here, before sessions and users (dashboard/ops/health.py).
    "dashboard.ops.health.ProbeMiddleware",
    # Django's, except that a session the database can't save leaves the page as it is.
    "dashboard.ops.database.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Reads the signed-in user at once: a 503 when the database can't be reached, not a 500 later.
    "dashboard.ops.database.middleware.SignedInUserMiddleware",
    # Before SessionLifetimeMiddleware, which adds a message and answers htmx requests itself.
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # django-otp's, keeping the second factor and the permissions in the session (accounts/access.py).
    "dashboard.accounts.two_factor.verification.SessionVerificationMiddleware",
    "dashboard.ops.log_context.LogContextMiddleware",
    "dashboard.accounts.sessions.SessionLifetimeMiddleware",
    # After the session's own limits, before two-factor: a session the provider refused ends first.
    "dashboard.accounts.sso.recheck.SingleSignOnRecheckMiddleware",
    "dashboard.accounts.two_factor.middleware.TwoFactorMiddleware",
    # A view whose write fails because the database can't be written answers 503, saying so.
    "dashboard.ops.database.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username+address is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    # Passwords, as DASHBOARD_PASSWORD_SIGN_IN allows them (on, superusers only, or off). Both read the
    # user's access stamp with the user (dashboard/accounts/access.py).
    "dashboard.accounts.passwords.PasswordBackend",
    # The identity provider's answer at /accounts/sso/callback/ (docs/single-sign-on.md).
    "dashboard.accounts.sso.backend.SingleSignOnBackend",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "customers.context_processors.upstream",
            ],
        },
    },
]

# PostgreSQL when DATABASE_URL is set (every instance of a deployment shares it); SQLite otherwise.
POSTGRES_URL_SCHEMES = {"postgres", "postgresql", "pgsql"}
# How long an instance keeps a database connection open between requests. On PostgreSQL a health
# check before reuse replaces one that broke meanwhile (a restarted server), without a restart here.
DATABASE_CONN_MAX_AGE = 600


def env_database(name: str) -> dict | None:
    """The PostgreSQL database a URL names, or None when the variable is unset.

    The error never repeats the URL: it holds the password.
    """
    url = env_str(name)
    if not url:
        return None
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme not in POSTGRES_URL_SCHEMES:
        raise ImproperlyConfigured(
            f"{name} must be a PostgreSQL URL such as postgres://user:password@host:5432/name; "
            f"got one with scheme {scheme!r}."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=True)
    except ValueError:  # a port that is not a number, an unclosed "["
        raise ImproperlyConfigured(f"{name} is not a valid PostgreSQL URL.") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} must name the database after the host, as in .../kyc_desk.")
    return dict(config)


def env_redis_url(name: str) -> str:
    """A redis:// (or TLS rediss://) URL, or "" when the variable is unset."""
    url = env_str(name)
    if url and (urlsplit(url).scheme not in {"redis", "rediss"} or not urlsplit(url).hostname):
        raise ImproperlyConfigured(
            f"{name} must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0."
        )
    return url


DATABASE_URL_CONFIG = env_database("DATABASE_URL")
if DATABASE_URL_CONFIG is not None:
    DATABASES = {"default": DATABASE_URL_CONFIG}
else:
    DATABASES = {
        "default": {
            # Django's SQLite backend, which also reads a database it can't write (dashboard.ops.database).
            "ENGINE": "dashboard.ops.database",
            "NAME": Path(env_str("DASHBOARD_DB_PATH", str(BASE_DIR / "db.sqlite3"))),
            # Kept open between requests, one per thread: opening a connection and closing it (which
            # checkpoints the WAL) cost about a sixth of a lookup (bench/README.md).
            "CONN_MAX_AGE": DATABASE_CONN_MAX_AGE,
            # Every lookup writes its audit row first, from many threads at once: WAL lets pages read
            # while a row is written, IMMEDIATE takes the write lock up front instead of failing a
            # transaction half-way, and a writer waits up to 5 s for the lock before giving up.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 5,
            },
        }
    }

# Two caches: "default", for what each process may keep to itself, and "shared" (SHARED_CACHE), for
# what every worker and instance must see: a bulk lookup's rows, the webhook rate limit, the
# new-KYC-session guard (dashboard/ops/shared_cache.py). Redis holds both when REDIS_URL is set.
REDIS_URL = env_redis_url("REDIS_URL")
SHARED_CACHE = "shared"
# Without REDIS_URL the shared cache is a table of the database, made by `manage.py createcachetable`.
SHARED_CACHE_TABLE = "kycdesk_shared_cache"
if REDIS_URL:
    REDIS_CACHE = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # A Redis that stops answering without closing its connections (a paused server, a lost
        # network) fails a request after 2 s instead of redis-py's 5: it answers within a millisecond
        # when it works, and each such wait holds a thread (docs/operations.md, "When Redis stops").
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
    CACHES = {"default": REDIS_CACHE, SHARED_CACHE: REDIS_CACHE}
    # Sessions in the cache alone (docs/operations.md, "Database and cache"): no database write per request
    # for the idle timeout, and a database outage does not sign anyone out. Losing Redis does. Django's
    # cache store, except that a Redis it can't reach is a 503 saying so, not a signed-out user.
    SESSION_ENGINE = "dashboard.ops.session_store"
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        SHARED_CACHE: {
            "BACKEND": "dashboard.ops.shared_cache.DatabaseCache",
            "LOCATION": SHARED_CACHE_TABLE,
            # Expired entries are deleted once the table holds more than this. Live ones are mostly
            # rows of running batches, at most 4 batches of 500 per worker: below it up to 25 workers,
            # so none is dropped before its time.
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        },
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "customers:search"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("DASHBOARD_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `collectstatic` (run by `make serve`) copies every static file here, where WhiteNoise serves it.
STATIC_ROOT = Path(env_str("DASHBOARD_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# With debug off, file names carry a hash of their content and gzip copies sit beside them, so
# WhiteNoise can let browsers cache them for years and still send a changed file at once. The
# manifest only exists after `collectstatic`: a page rendered without it fails loudly rather than
# linking files nobody serves. Debug (`make run`) serves the source files as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Security and compliance (docs/security.md) ----------------------------------------------
# Sessions end after DASHBOARD_SESSION_IDLE_MINUTES without a request (a request moves the
# server-side expiry on, saving the session at most once a minute: dashboard.accounts.sessions), after
# DASHBOARD_SESSION_MAX_HOURS whatever happens, and when the browser closes (the cookie carries
# no expiry date).
DASHBOARD_SESSION_IDLE_MINUTES = env_positive_int("DASHBOARD_SESSION_IDLE_MINUTES", 30, maximum=24 * 60)
DASHBOARD_SESSION_MAX_HOURS = env_positive_int("DASHBOARD_SESSION_MAX_HOURS", 12, maximum=7 * 24)
SESSION_COOKIE_AGE = DASHBOARD_SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = False
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_AGE = None  # like the session cookie, gone when the browser closes

# HTTPS only: redirect plain HTTP, cookies only over TLS, and HSTS. Off only for debug runs and
# for tests that serve plain HTTP on loopback (the load test).
DJANGO_HTTPS_ONLY = env_bool("DJANGO_HTTPS_ONLY", not DEBUG)
SESSION_COOKIE_SECURE = DJANGO_HTTPS_ONLY
CSRF_COOKIE_SECURE = DJANGO_HTTPS_ONLY

# Two-factor authentication (TOTP, with one-time recovery codes) for every user.
DASHBOARD_REQUIRE_2FA = env_bool("DASHBOARD_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = "KYC Desk"
# The admin never shows an app's secret or QR code, nor unused recovery codes: not even a
# superuser may read someone else's second factor (issue #10). Resetting is deleting the device.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Addresses of reverse proxies whose X-Forwarded-For is believed. Only these: a client that
# sends the header itself must not be able to choose the address in the audit log.
DASHBOARD_TRUSTED_PROXIES = env_list("DASHBOARD_TRUSTED_PROXIES", [])

# Set when TLS ends at a proxy that sends X-Forwarded-Proto; never otherwise, or any client
# could claim its plain-HTTP request was secure.
DJANGO_BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
if DJANGO_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = DJANGO_HTTPS_ONLY
# An orchestrator probes the pod over plain HTTP: a redirect would hide a 503 from it. /metrics
# is not exempt: its bearer token must not travel in clear text.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if DJANGO_HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "font-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# Login throttling: five failures for one username from one address lock that pair out.
# Attempts are kept in the database, which every instance shares (PostgreSQL in a deployment),
# rather than in the cache: a lockout then survives a Redis restart, and unlock_username lifts it.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "dashboard.ops.client_ip.client_ip"
# Axes would log usernames and addresses at every attempt; dashboard.accounts.sessions logs the lockout.
AXES_VERBOSE = False
# Keep only what the lockout needs: a keyed digest of the username typed (perhaps a password in
# the wrong box), no row per successful sign-in, no failure log, and none of the form's other
# values (`next` may hold a lookup URL). `manage.py unlock_username` lifts a lockout.
AXES_USERNAME_CALLABLE = "dashboard.accounts.login_attempts.attempt_username"
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "next", "csrfmiddlewaretoken"]
# The identity provider's callback is not a password guess: a failed or forged one must never lock
# out the address a whole office signs in from.
AXES_WHITELIST_CALLABLE = "dashboard.accounts.login_attempts.is_single_sign_on_callback"


# --- Single sign-on through the company's identity provider (docs/single-sign-on.md) ------------
def env_issuer_url(name: str) -> str:
    """The provider's issuer URL, or "" when unset: https, or plain http on this machine only.

    Tokens that sign staff in travel to and from it, as the API key does to Align.
    """
    if not env_str(name):
        return ""
    return env_secret_carrying_url(name, "https://login.example.com/realms/staff", carries="sign-in tokens")


def env_group_map(name: str) -> dict[str, str]:
    """`idp-group=Django group,...`: which of the provider's groups puts staff in which group here."""
    mapping: dict[str, str] = {}
    for item in env_list(name, []):
        provider_group, equals, django_group = (part.strip() for part in item.partition("="))
        if not equals or not provider_group or not django_group:
            raise ImproperlyConfigured(
                f"{name} must read idp-group=Django group, separated by commas "
                f"(kyc-staff=Compliance staff,kyc-auditors=Compliance auditors); got {item!r}."
            )
        mapping[provider_group] = django_group
    return mapping


DASHBOARD_OIDC_ISSUER = env_issuer_url("DASHBOARD_OIDC_ISSUER")
SINGLE_SIGN_ON = bool(DASHBOARD_OIDC_ISSUER)
DASHBOARD_OIDC_CLIENT_ID = env_str("DASHBOARD_OIDC_CLIENT_ID")
DASHBOARD_OIDC_CLIENT_SECRET = env_str("DASHBOARD_OIDC_CLIENT_SECRET")
if SINGLE_SIGN_ON and not (DASHBOARD_OIDC_CLIENT_ID and DASHBOARD_OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "DASHBOARD_OIDC_ISSUER is set, so DASHBOARD_OIDC_CLIENT_ID and DASHBOARD_OIDC_CLIENT_SECRET must be "
        "too: the client the dashboard is registered as at the identity provider."
    )
# "Sign in with <this>" on the login page.
DASHBOARD_OIDC_PROVIDER_NAME = env_str("DASHBOARD_OIDC_PROVIDER_NAME", "single sign-on")
DASHBOARD_OIDC_GROUPS_CLAIM = env_str("DASHBOARD_OIDC_GROUPS_CLAIM", "groups")
DASHBOARD_OIDC_GROUP_MAP = env_group_map("DASHBOARD_OIDC_GROUP_MAP")
# The provider's `amr` values that count as a second factor: such a sign-in skips the local TOTP.
DASHBOARD_OIDC_TRUSTED_AMR = env_list("DASHBOARD_OIDC_TRUSTED_AMR", [])
# How often a signed-in SSO session asks the provider, server-side, whether it still stands.
DASHBOARD_OIDC_RECHECK_SECONDS = env_positive_int("DASHBOARD_OIDC_RECHECK_SECONDS", 300, maximum=24 * 3600)

PASSWORD_SIGN_IN_MODES = ("on", "break-glass", "off")
DASHBOARD_PASSWORD_SIGN_IN = env_str(
    "DASHBOARD_PASSWORD_SIGN_IN", "break-glass" if SINGLE_SIGN_ON else "on"
).lower()
if DASHBOARD_PASSWORD_SIGN_IN not in PASSWORD_SIGN_IN_MODES:
    raise ImproperlyConfigured(
        f"DASHBOARD_PASSWORD_SIGN_IN must be on, break-glass or off; got {DASHBOARD_PASSWORD_SIGN_IN!r}."
    )
if DASHBOARD_PASSWORD_SIGN_IN == "off" and not SINGLE_SIGN_ON:  # noqa: S105 (a mode, not a password)
    raise ImproperlyConfigured(
        "DASHBOARD_PASSWORD_SIGN_IN is off and DASHBOARD_OIDC_ISSUER is not set: nobody could sign in."
    )

# mozilla-django-oidc's own settings. The provider's endpoints are not here: they come from its
# discovery document (dashboard/accounts/sso/provider.py).
OIDC_RP_CLIENT_ID = DASHBOARD_OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = DASHBOARD_OIDC_CLIENT_SECRET
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_AUTHENTICATION_CALLBACK_URL = "sso_callback"
OIDC_TIMEOUT = 10
# The provider's token endpoint is asked with HTTP Basic credentials (client_secret_basic), the
# method every provider supports.
OIDC_TOKEN_USE_BASIC_AUTH = True

# --- Health, readiness and metrics (docs/operations.md) ---------------------------------------
# /metrics answers only requests with "Authorization: Bearer <this>"; unset, it is a 404.
DASHBOARD_METRICS_TOKEN = env_str("DASHBOARD_METRICS_TOKEN")
# Set under gunicorn: each worker writes its metrics here, and /metrics adds them up. Read by
# prometheus-client itself too, when it is first imported, so it must be set before start-up.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR must be an existing directory; got {PROMETHEUS_MULTIPROC_DIR!r}."
    )

# --- Logging: JSON lines in production, readable lines in debug, no PII in either ---------------
DASHBOARD_LOG_FORMAT = env_str("DASHBOARD_LOG_FORMAT", "text" if DEBUG else "json").lower()
if DASHBOARD_LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"DASHBOARD_LOG_FORMAT must be json or text; got {DASHBOARD_LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "dashboard.ops.log_context.RequestContextFilter"},
        # Paths and query strings become routes and parameter names (dashboard/ops/log_redaction.py).
        "redact_request": {"()": "dashboard.ops.log_redaction.RedactRequestFilter"},
    },
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s user=%(user_id)s "
            "customer=%(customer_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message", "request_id", "user_id", "customer_id"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": DASHBOARD_LOG_FORMAT,
            # On the handler too, for every other logger that attaches a request (django.security.*).
            "filters": ["redact_request", "request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # Through our console only: Django's own handlers (a debug console, mail_admins) would
        # write its lines a second time, unredacted.
        "django": {"handlers": [], "level": "INFO"},
        # On the loggers, so the record is redacted before any handler sees it.
        "django.request": {"filters": ["redact_request"]},
        "django.server": {"level": "INFO", "propagate": True, "filters": ["redact_request"]},
        "axes": {"level": "WARNING"},
    },
}
