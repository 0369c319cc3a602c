"""Connects the sign-in log lines (dashboard.accounts.sessions) to Django's and django-axes' signals,
and the access stamp's receivers (dashboard.accounts.access) to the changes that move it on."""

from axes.signals import user_locked_out
from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from dashboard.accounts import access, sessions

user_logged_in.connect(sessions.log_signed_in, dispatch_uid="dashboard-signed-in")
user_logged_out.connect(sessions.log_signed_out, dispatch_uid="dashboard-signed-out")
user_login_failed.connect(sessions.log_sign_in_failed, dispatch_uid="dashboard-sign-in-failed")
user_locked_out.connect(sessions.log_locked_out, dispatch_uid="dashboard-locked-out")
access.connect_receivers(apps.get_app_config("accounts"))
