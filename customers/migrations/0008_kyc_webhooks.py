"""Align's KYC webhooks (issue #13): the events table, the automatic-refresh flag of a lookup, and
the auditors' right to read the events.

The permission is created here first, as 0003 does, so the auditors' group is complete on a
brand-new database too.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

AUDITORS = "Compliance auditors"
VIEW_EVENTS = "view_kycwebhookevent"


def let_auditors_read_webhook_events(apps, schema_editor):
    app_config = apps.get_app_config("customers")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="customers", codename=VIEW_EVENTS)
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.add(permission)


def take_the_right_back(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="customers", codename=VIEW_EVENTS)
    for group in Group.objects.filter(name=AUDITORS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0007_bulk_lookup'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='automatic',
            field=models.BooleanField(default=False, verbose_name='automatic refresh'),
        ),
        migrations.CreateModel(
            name='KycWebhookEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('delivery_key', models.CharField(help_text="SHA-256 of the event type, customer ID, Align's time and the body's digest: a delivery Align sends again is stored once.", max_length=64, unique=True, verbose_name='delivery key')),
                ('customer_id', models.UUIDField(verbose_name='customer ID')),
                ('event_created_at', models.DateTimeField(help_text='When Align says the change happened.', verbose_name="Align's time")),
                ('received_at', models.DateTimeField(auto_now_add=True, verbose_name='received')),
                ('kyc_status', models.CharField(blank=True, help_text='As in the audit log: empty when the customer has no KYC record.', max_length=40, verbose_name='KYC status')),
                ('kyc_sub_status', models.CharField(blank=True, max_length=60, verbose_name='KYC sub-status')),
                ('breakdown', models.JSONField(default=list, help_text='[currency, rail, status] per row, as Align sent them.', verbose_name='status breakdown')),
            ],
            options={
                'verbose_name': 'KYC webhook event',
                'ordering': ['-id'],
                'default_permissions': ('view',),
                'indexes': [models.Index(fields=['customer_id', '-id'], name='webhook_customer_recent')],
            },
        ),
        migrations.RunPython(let_auditors_read_webhook_events, take_the_right_back),
    ]
