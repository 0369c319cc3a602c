"""Create the demo login for `make run`; refuses to run outside debug mode.

The demo user gets access the way real staff do: as a member of the "Compliance staff" group.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from customers.permissions import COMPLIANCE_STAFF_GROUP

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # noqa: S105  (a known local-only login; the command refuses to run outside debug)


class Command(BaseCommand):
    help = "Create or reset the local demo login (debug mode only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo login exists only in debug mode (DJANGO_DEBUG=1).")
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.set_password(DEMO_PASSWORD)
        user.is_active = True
        user.save()
        user.user_permissions.remove(Permission.objects.get(codename="lookup_customer"))
        user.groups.add(Group.objects.get(name=COMPLIANCE_STAFF_GROUP))
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} the demo login: username {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}.")
