"""What the commands show on a terminal."""

from __future__ import annotations

from typing import Any


def progress_bar(stream: Any, fraction: float, width: int = 40) -> None:
    """Redraw a ``[####....]  42.0 %`` bar on ``stream`` (a command's ``stderr``), in place."""
    done = int(max(0.0, min(fraction, 1.0)) * width)
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {100 * fraction:5.1f} %", ending="")
    stream.flush()
