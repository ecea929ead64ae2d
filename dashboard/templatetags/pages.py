"""What every page's frame shows, whichever view rendered it: the system's health."""

from __future__ import annotations

from typing import Any

from django import template

from ..health import system_health

register = template.Library()


@register.simple_tag
def site_health() -> dict[str, Any]:
    """The health record (cached for a second per process) for the live indicator and the demo banner."""
    return system_health()
