"""Create the default pair BTCUSDT/ETHUSDT (1 s bars, window 300, warm-up 100)."""

from django.db import migrations


def create_default_pair(apps, schema_editor):
    Pair = apps.get_model("analytics", "Pair")
    Pair.objects.get_or_create(
        symbol_a="BTCUSDT", symbol_b="ETHUSDT", interval="1s", defaults={"window": 300, "min_bars": 100}
    )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]
    operations = [migrations.RunPython(create_default_pair, migrations.RunPython.noop)]
