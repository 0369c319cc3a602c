"""`manage.py check --deploy` passes with the documented production environment, and only then.

Each test starts one `manage.py` process with a clean environment (PATH only, plus the
variables below), so nothing from the test settings or the developer's shell leaks in.
"""

import os
import secrets
import subprocess
import sys

import pytest

from tests.support.servers import run_captured

CHECK_TIMEOUT_SECONDS = 60


@pytest.fixture
def production_environment(tmp_path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DASHBOARD_AUDIT_HASH_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "kyc-desk.example.com",
        "ALIGN_API_KEY": "deploy-check-key",
        "DJANGO_BEHIND_TLS_PROXY": "1",
        "DASHBOARD_DB_PATH": str(tmp_path / "db.sqlite3"),
    }


def run_deploy_check(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return run_captured(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        timeout=CHECK_TIMEOUT_SECONDS,
    )


def test_production_environment_passes_the_deploy_check(production_environment):
    result = run_deploy_check(production_environment)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output


def test_deploy_check_fails_when_debug_is_on(production_environment):
    result = run_deploy_check(production_environment | {"DJANGO_DEBUG": "1"})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "security.W018" in output  # DEBUG is on
    assert "no issues" not in output
