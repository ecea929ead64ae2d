"""A pair's alerts can be e-mailed and sent to a Telegram chat, besides its webhook."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0007_screener_run'),
    ]

    operations = [
        migrations.AddField(
            model_name='pair',
            name='email_recipients',
            field=models.TextField(blank=True, help_text='alerts of this pair are e-mailed to these addresses, commas or new lines between them (at most 20; optional)'),
        ),
        migrations.AddField(
            model_name='pair',
            name='telegram_chat_id',
            field=models.CharField(blank=True, help_text="alerts of this pair are sent to this Telegram chat by the bot of TELEGRAM_BOT_TOKEN: its numeric id (-100... for a group or channel) or a public channel's @username (optional)", max_length=40),
        ),
    ]
