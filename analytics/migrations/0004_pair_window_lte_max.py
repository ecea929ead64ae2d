"""Windows hold at most MAX_WINDOW (5,000) bars.

A larger window made one snapshot take seconds on the cycle every pair shares. An
existing pair above the cap is clamped to it (and its min_bars to its window), with
a line on the console naming it, before the constraint is added.
"""

from __future__ import annotations

from django.db import migrations, models

MAX_WINDOW = 5000  # analytics.models.MAX_WINDOW when this migration was written


def clamp_windows(apps, schema_editor) -> None:
    Pair = apps.get_model("analytics", "Pair")
    for pair in Pair.objects.filter(models.Q(window__gt=MAX_WINDOW) | models.Q(min_bars__gt=MAX_WINDOW)):
        window = min(pair.window, MAX_WINDOW)
        min_bars = min(pair.min_bars, window)
        print(
            f"\n  pair {pair.pk} ({pair.symbol_a}/{pair.symbol_b} {pair.interval}): window {pair.window} -> {window}, "
            f"min_bars {pair.min_bars} -> {min_bars} (windows hold at most {MAX_WINDOW} bars)"
        )
        Pair.objects.filter(pk=pair.pk).update(window=window, min_bars=min_bars)


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_pair_webhook_url")]

    operations = [
        migrations.RunPython(clamp_windows, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pair",
            name="window",
            field=models.PositiveIntegerField(default=300, help_text="bars in the statistics window (10 to 5000)"),
        ),
        migrations.AddConstraint(
            model_name="pair",
            constraint=models.CheckConstraint(condition=models.Q(window__lte=5000), name="pair_window_lte_max"),
        ),
    ]
