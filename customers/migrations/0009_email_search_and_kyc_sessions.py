"""Search by e-mail and new KYC sessions (issue #14): the audit columns a search needs, a customer ID
that a search without exactly one match leaves empty, and the Compliance leads group.

The permission is created here first, as 0003 does, so the group is complete on a brand-new
database too. Reversing removes the group (and only it: its permissions belong to the model).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

LEADS = "Compliance leads"
LEADS_PERMISSIONS = ["lookup_customer", "start_kyc_session"]


def create_compliance_leads(apps, schema_editor):
    app_config = apps.get_app_config("customers")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=LEADS)
    group.permissions.set(
        [
            Permission.objects.get(content_type__app_label="customers", codename=codename)
            for codename in LEADS_PERMISSIONS
        ]
    )


def remove_compliance_leads(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=LEADS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0008_kyc_webhooks'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='customeraccess',
            options={'default_permissions': (), 'managed': False, 'permissions': [('lookup_customer', 'Can look up Align customers and see their KYC state'), ('export_customer_email', "Can export customers' e-mail addresses in bulk lookup CSVs"), ('start_kyc_session', 'Can start a new KYC session for an Align customer')], 'verbose_name': 'customer lookup access'},
        ),
        migrations.AddField(
            model_name='auditevent',
            name='email_hash',
            field=models.CharField(blank=True, db_index=True, help_text='HMAC-SHA256 of the searched e-mail under DASHBOARD_AUDIT_HASH_KEY; search it by e-mail.', max_length=64, verbose_name='e-mail hash'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='match_count',
            field=models.PositiveIntegerField(blank=True, null=True, verbose_name='matches'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='matched_customer_ids',
            field=models.JSONField(blank=True, default=list, verbose_name='matched customer IDs'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('lookup', 'Lookup'), ('link_copied', 'KYC link copied'), ('email_search', 'Searched by e-mail'), ('kyc_session', 'KYC session started')], max_length=20),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='customer_id',
            field=models.UUIDField(blank=True, db_index=True, null=True, verbose_name='customer ID'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='outcome',
            field=models.CharField(choices=[('started', 'Started (outcome not recorded)'), ('found', 'Found'), ('not_found', 'Not found'), ('invalid_response', 'Invalid response from Align'), ('key_rejected', 'API key rejected'), ('rate_limited', 'Rate limited'), ('timeout', 'Timed out'), ('unreachable', 'Align unreachable'), ('upstream_error', 'Align error'), ('not_configured', 'API key not configured'), ('copied', 'Link copied'), ('session_started', 'New KYC session started'), ('refused', 'Refused by Align')], max_length=20),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('action__in', ['lookup', 'email_search']), ('customer_id__isnull', False)), fields=['user', '-id'], name='audit_user_shown_recent'),
        ),
        migrations.RunPython(create_compliance_leads, remove_compliance_leads),
    ]
