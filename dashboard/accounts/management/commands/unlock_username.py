"""Lift a login lockout early: `manage.py unlock_username <username>`.

django-axes's own `axes_reset_username` looks for the username as typed, but the throttle stores
only its keyed digest (dashboard/accounts/login_attempts.py), so this command digests it first.
"""

from axes.utils import reset
from django.core.management.base import BaseCommand

from dashboard.accounts.login_attempts import username_digest


class Command(BaseCommand):
    help = "Forget the failed sign-ins of these usernames, from every address, lifting their lockout."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="+")

    def handle(self, *args, **options):
        removed = sum(reset(username=username_digest(username)) for username in options["username"])
        if removed:
            self.stdout.write(f"{removed} failed sign-in record(s) removed.")
        else:
            self.stdout.write("No failed sign-ins found.")
