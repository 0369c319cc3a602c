"""Single sign-on (issue #20): the auditors' right to read the whole sign-in trail.

A refused single sign-on that names nobody, and every break-glass sign-in, are auditors'
business; they were readable only user by user, on each user's activity page. The permission
is created here first, as 0003 does, so the auditors' group is complete on a brand-new database.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUDITORS = "Compliance auditors"
VIEW_SIGN_INS = "view_signinevent"


def let_auditors_read_sign_ins(apps, schema_editor):
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="accounts", codename=VIEW_SIGN_INS)
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.add(permission)


def take_the_right_back(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="accounts", codename=VIEW_SIGN_INS)
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_audit_sub_status_and_single_lookups"),
        ("accounts", "0002_single_sign_on"),
    ]

    operations = [migrations.RunPython(let_auditors_read_sign_ins, take_the_right_back)]
