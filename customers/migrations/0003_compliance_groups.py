"""The two groups an administrator puts people in, each holding exactly what its job needs.

Permissions are normally created after all migrations have run; they are created here first,
so the groups are complete on a brand-new database too.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    "Compliance staff": [("customers", "lookup_customer")],
    "Compliance auditors": [("customers", "view_auditevent"), ("customers", "export_auditevent")],
}


def create_groups(apps, schema_editor):
    app_config = apps.get_app_config("customers")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
                for app_label, codename in permissions
            ]
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_audit_event"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
