"""A card's reads of a bounded length (issue #21, item 2): two marks a lookup's outcome sets, their indexes.

Rows written before this are read as before: none is marked as repeating what came before it, so every
one of their found lookups is a KYC change to History, and every one of their cards starts a run for
Your recent lookups. Their rows that showed no card lose repeats_last_card, which only cards carry.
"""

from django.conf import settings
from django.db import migrations, models


def only_cards_are_marked(apps, schema_editor):
    """The rows that showed no card (SHOWN_CARD's complement, as of this migration) carry no mark."""
    AuditEvent = apps.get_model("customers", "AuditEvent")
    shown_card = models.Q(action__in=["lookup", "email_search"], customer_id__isnull=False, batch__isnull=True)
    AuditEvent.objects.exclude(shown_card).update(repeats_last_card=None)


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0011_auditors_read_sign_ins'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditevent',
            name='audit_customer_action_recent',
        ),
        migrations.RemoveIndex(
            model_name='auditevent',
            name='audit_user_shown_recent',
        ),
        migrations.AddField(
            model_name='auditevent',
            name='kyc_unchanged',
            field=models.BooleanField(default=False, help_text="This lookup saw exactly what the customer's lookup before it saw, with no webhook or new KYC session between them: History, which shows changes, skips it.", verbose_name='KYC unchanged'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='repeats_last_card',
            field=models.BooleanField(default=False, help_text="The user's card before this lookup was of the same customer: Your recent lookups reads the first of such a run. Empty on a row that showed no card.", null=True, verbose_name='repeats the last card'),
        ),
        migrations.RunPython(only_cards_are_marked, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(models.F('customer_id'), models.F('action'), models.Func(models.F('id'), output_field=models.BigIntegerField(), template='(-%(expressions)s)'), name='audit_customer_action_recent'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(models.F('user'), models.Func(models.F('id'), output_field=models.BigIntegerField(), template='(-%(expressions)s)'), condition=models.Q(('repeats_last_card', False)), name='audit_user_shown_recent'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(models.F('user'), models.F('customer_id'), models.Func(models.F('id'), output_field=models.BigIntegerField(), template='(-%(expressions)s)'), condition=models.Q(('repeats_last_card__isnull', False)), name='audit_user_customer_cards'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(models.F('customer_id'), models.F('action'), models.F('outcome'), models.Func(models.F('id'), output_field=models.BigIntegerField(), template='(-%(expressions)s)'), condition=models.Q(('kyc_unchanged', False)), name='audit_customer_kyc_changes'),
        ),
        migrations.AddIndex(
            model_name='kycwebhookevent',
            index=models.Index(fields=['customer_id', 'event_created_at'], name='webhook_customer_since'),
        ),
    ]
