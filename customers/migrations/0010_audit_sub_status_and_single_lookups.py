"""The sub-status a lookup saw (issue #19, item 4), and "Your recent lookups" without bulk rows (item 13).

Rows written before this keep an empty sub-status: History then says only what they knew.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0009_email_search_and_kyc_sessions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='auditevent',
            name='audit_user_shown_recent',
        ),
        migrations.AddField(
            model_name='auditevent',
            name='kyc_sub_status',
            field=models.CharField(blank=True, default='', help_text="Align's KYC sub-status code, when found; empty on rows from before it was kept.", max_length=60, verbose_name='KYC sub-status seen'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('action__in', ['lookup', 'email_search']), ('batch__isnull', True), ('customer_id__isnull', False)), fields=['user', '-id'], name='audit_user_shown_recent'),
        ),
    ]
