"""Who may do what through the API: anyone reads, staff writes.

The project-wide default (``REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]``), so a
new endpoint that accepts writes needs a staff user from the day it is added.
"""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request


class IsStaffOrReadOnly(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_staff)
