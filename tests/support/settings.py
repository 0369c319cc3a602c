"""Settings for the test suite: the real settings module, fed a known test environment.

The upstream points at a host that does not exist; every test that talks to it mocks it with
`responses`, and tests/conftest.py refuses any other network connection.

DATABASE_URL and REDIS_URL are left as the environment has them: unset, the suite runs on SQLite
and local memory; `make test` runs it a second time with both set (tests/support/services.py).
"""

import os
import tempfile
from pathlib import Path

TEST_ENVIRONMENT = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "tests-only-secret-key-not-used-anywhere-else",
    "DASHBOARD_AUDIT_HASH_KEY": "tests-only-audit-hash-key",
    "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "ALIGN_API_BASE_URL": "https://align.invalid",
    "ALIGN_API_KEY": "test-api-key-5f1c9e0d7a",
    "ALIGN_API_TIMEOUT": "2",
    # Two-factor sign-in has its own tests, which turn it on; the rest sign in with a password.
    "DASHBOARD_REQUIRE_2FA": "0",
}
os.environ.update(TEST_ENVIRONMENT)

from dashboard.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the source folders: the suite never runs collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# The test client and live_server speak plain HTTP; the redirect to HTTPS has its own test.
SECURE_SSL_REDIRECT = False

if DATABASE_URL_CONFIG is None:  # noqa: F405
    # A file, not SQLite's shared in-memory database: a bulk lookup's threads write the audit
    # trail while the live server writes sessions, and shared-cache SQLite refuses concurrent
    # writers at once ("database table is locked") where a file waits for the lock, as in
    # production. One file per test process, so runs side by side do not share it.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"kyc-desk-tests-{os.getpid()}.sqlite3")
    }
