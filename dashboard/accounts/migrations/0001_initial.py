"""The record of sign-ins, failed sign-ins and sign-outs (issue #19, item 5), for auditors.

Read on a user's activity page in the customers admin, and in its own read-only admin by whoever
holds accounts.view_signinevent (superusers; no group is given it here).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SignInEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("occurred_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("signed_in", "Signed in"),
                            ("sign_in_failed", "Sign-in failed"),
                            ("signed_out", "Signed out"),
                        ],
                        max_length=20,
                    ),
                ),
                ("client_ip", models.GenericIPAddressField(blank=True, null=True, verbose_name="client IP")),
                ("request_id", models.CharField(blank=True, max_length=32, verbose_name="request ID")),
                (
                    "user",
                    models.ForeignKey(
                        help_text="Users who signed in cannot be deleted; deactivate them instead.",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sign_in_events",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "sign-in event",
                "ordering": ["-occurred_at", "-id"],
                "default_permissions": ("view",),
                "indexes": [models.Index(fields=["user", "-id"], name="sign_in_user_recent")],
            },
        ),
    ]
