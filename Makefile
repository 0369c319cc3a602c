# KYC Desk: `make run` to try it, `make test` to check it, `make serve` in production. All set up
# .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Browser tests drive Debian's Chromium; Playwright never downloads a browser of its own here.
CHROMIUM := /usr/bin/chromium

# `make run` talks to the local stand-in of the Align API, never to a real environment.
# `make run SSO=1` also signs in through a local identity provider (docs/single-sign-on.md).
# Other ports when these are taken: `make run PORT=9000 STUB_PORT=9001 SSO_PORT=9002`.
PORT ?= 8000
STUB_PORT ?= 8001
SSO_PORT ?= 8002
RUN_ENV := DJANGO_DEBUG=1 \
	ALIGN_API_BASE_URL=http://127.0.0.1:$(STUB_PORT) \
	ALIGN_API_KEY=local-stand-in-key \
	ALIGN_WEBHOOKS_ENABLED=1
SIGN_IN := log in as demo / demo
SSO_STAND_IN :=
ifeq ($(SSO),1)
# Its demo people, one per group of this map, are picked on its page; demo / demo still works.
RUN_ENV += DASHBOARD_OIDC_ISSUER=http://127.0.0.1:$(SSO_PORT) \
	DASHBOARD_OIDC_CLIENT_ID=kyc-desk-local \
	DASHBOARD_OIDC_CLIENT_SECRET=local-stand-in-secret \
	DASHBOARD_OIDC_PROVIDER_NAME="Local identity provider" \
	DASHBOARD_OIDC_GROUP_MAP="kyc-staff=Compliance staff,kyc-leads=Compliance leads,kyc-auditors=Compliance auditors" \
	DASHBOARD_OIDC_TRUSTED_AMR=mfa \
	DASHBOARD_PASSWORD_SIGN_IN=on
SIGN_IN := Sign in with Local identity provider as sso-staff, sso-lead, sso-auditor or sso-nobody, \
	or log in as demo / demo; the identity provider is on port $(SSO_PORT)
SSO_STAND_IN := $(PY) -m dashboard.accounts.sso.standin --port $(SSO_PORT) --demo-users & sso=$$!;
endif

.PHONY: run serve test test-fast lint format browser nginx services apt-install clean bench bench-bulk soak

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed (set PYTHON=... to use another 3.11 interpreter)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py createcachetable
	$(RUN_ENV) $(PY) manage.py ensure_demo_user
	@echo "KYC Desk: http://127.0.0.1:$(PORT)/ ($(SIGN_IN); the Align stand-in is on port $(STUB_PORT))"
	@export $(RUN_ENV); \
	$(PY) manage.py align_stub --port $(STUB_PORT) --generate 500 \
		--webhook-url http://127.0.0.1:$(PORT)/webhooks/align/ & stub=$$!; \
	$(SSO_STAND_IN) \
	trap 'kill $$stub $$sso 2>/dev/null; wait $$stub $$sso 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Production: debug off, so DJANGO_SECRET_KEY and the rest of docs/operations.md, "Deploying", must be set.
# gunicorn.conf.py binds $${BIND:-127.0.0.1}:$${PORT:-8000}; several instances run side by side on
# other ports (`make serve PORT=8101`). createcachetable makes the shared cache's table when there
# is no REDIS_URL (dashboard/ops/shared_cache.py), and does nothing when it is there already.
# exec: gunicorn replaces the shell and gets its signals.
serve: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput
	BIND="$(BIND)" PORT="$(PORT)" exec $(VENV)/bin/gunicorn -c gunicorn.conf.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

AXE := node_modules/axe-core/axe.min.js

# Debian's Chromium, and npm for axe-core, installed only where missing.
browser: $(AXE)
	@test -x $(CHROMIUM) || $(MAKE) --no-print-directory apt-install PACKAGES=chromium

$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory apt-install PACKAGES="nodejs npm"
	npm ci --no-audit --no-fund --silent
	touch $(AXE)

# Debian's nginx in front of gunicorn, as docs/operations.md, "Deploying", runs it
# (tests/system/test_slow_clients.py), installed only where missing: nginx-light where the release
# still has it (Debian 12), else nginx.
# openssl makes that test's throwaway certificate.
NGINX := /usr/sbin/nginx
nginx:
	@test -x $(NGINX) || $(MAKE) --no-print-directory apt-install PACKAGES=nginx-light 2>/dev/null || \
		$(MAKE) --no-print-directory apt-install PACKAGES=nginx
	@command -v openssl >/dev/null || $(MAKE) --no-print-directory apt-install PACKAGES=openssl

# Debian's PostgreSQL and Redis for the second pass of `make test` (tests/support/services.py), installed
# only where missing. That pass starts throwaway servers of its own on free ports, whatever the
# packages start on 5432 and 6379.
services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || $(MAKE) --no-print-directory apt-install PACKAGES=postgresql
	@command -v redis-server >/dev/null || $(MAKE) --no-print-directory apt-install PACKAGES=redis-server

apt-install:
	@echo "Installing Debian packages: $(PACKAGES)"
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PACKAGES) >/dev/null

# The suites that run against whatever database and cache are configured: the second pass of
# `make test` runs them again on PostgreSQL and Redis (DATABASE_URL, REDIS_URL; docs/testing.md).
SERVICE_SUITES := tests/unit tests/contract tests/system/test_database_and_cache.py \
	tests/system/test_readonly_database.py

test: lint browser nginx services
	$(VENV)/bin/pytest
	$(PY) tests/support/services.py $(SERVICE_SUITES)

# Unit and contract tests only: no browser, no gunicorn, nginx, PostgreSQL or Redis.
test-fast: lint
	$(VENV)/bin/pytest tests/unit tests/contract

# The dashboard under gunicorn.conf.py beside Django's floor (bench/floor.py, in the same workers) and
# direct calls to the stand-in (bench/README.md); not part of `make test`. SQLite, then PostgreSQL and
# Redis when installed: `make bench BENCH_ARGS=...`.
bench: $(STAMP)
	$(PY) bench/serve_bench.py $(BENCH_ARGS)

# Bulk lookups under gunicorn.conf.py against a stand-in answering in 100 ms (bench/README.md).
bench-bulk: $(STAMP)
	$(PY) bench/bulk_bench.py $(BENCH_ARGS)

# A team's working day for 10 minutes on two instances behind nginx, PostgreSQL and Redis, Redis
# stopped for 20 s in the middle (bench/README.md); not part of `make test`, and for a quiet machine.
# A short try: `make soak SOAK_ARGS="--minutes 1 --staff 40"`.
soak: $(STAMP) nginx services
	$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) node_modules staticfiles test-artifacts
