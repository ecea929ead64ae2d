"""Each alert's delivery is recorded per channel (webhook, e-mail, Telegram) in one model.

The webhook's state moves from the alert's own columns (``webhook_status``,
``webhook_attempts``, ``webhook_error``) to a ``Notification`` row of channel
``webhook``; an alert whose pair had no webhook (status ``none``) gets none.
"""

from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


def webhook_state_to_notifications(apps, schema_editor) -> None:
    Alert = apps.get_model("alerts", "Alert")
    Notification = apps.get_model("alerts", "Notification")
    rows = Alert.objects.exclude(webhook_status="none").values_list(
        "id", "webhook_status", "webhook_attempts", "webhook_error", "created_at"
    )
    Notification.objects.bulk_create(
        [
            Notification(
                alert_id=alert_id,
                channel="webhook",
                status=status,
                attempts=attempts,
                error=error,
                sent_at=created_at if status == "sent" else None,  # the closest time known
            )
            for alert_id, status, attempts, error, created_at in rows.iterator()
        ],
        batch_size=1000,
    )


def notifications_to_webhook_state(apps, schema_editor) -> None:
    Alert = apps.get_model("alerts", "Alert")
    Notification = apps.get_model("alerts", "Notification")
    for row in Notification.objects.filter(channel="webhook").iterator():
        Alert.objects.filter(pk=row.alert_id).update(
            webhook_status=row.status, webhook_attempts=row.attempts, webhook_error=row.error
        )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_paper_positions")]

    operations = [
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "channel",
                    models.CharField(
                        choices=[("webhook", "Webhook"), ("email", "e-mail"), ("telegram", "Telegram")], max_length=8
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
                        default="pending",
                        max_length=7,
                    ),
                ),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("error", models.TextField(blank=True, help_text="the class of the last failure, with its attempt")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "alert",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notifications",
                        to="alerts.alert",
                    ),
                ),
            ],
            options={
                "ordering": ["alert", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("alert", "channel"), name="notification_alert_channel_uniq")
                ],
            },
        ),
        migrations.RunPython(webhook_state_to_notifications, notifications_to_webhook_state),
        migrations.RemoveField(model_name="alert", name="webhook_attempts"),
        migrations.RemoveField(model_name="alert", name="webhook_error"),
        migrations.RemoveField(model_name="alert", name="webhook_status"),
    ]
