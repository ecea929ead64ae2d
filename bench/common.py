"""Shared set-up of the benchmarks: a throw-away SQLite database and Django."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_on_fresh_database(name: str = "bench") -> Path:
    """Point Django at a new, migrated SQLite file in a temporary folder; return the folder."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pairs-{name}-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'template.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairs_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return workdir


def remove(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def best_of(fn: Callable[[], object], repeat: int = 7, number: int = 1) -> float:
    """Seconds per call: the minimum over ``repeat`` runs (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        start = perf_counter()
        for _ in range(number):
            fn()
        times.append((perf_counter() - start) / number)
    return min(times)
