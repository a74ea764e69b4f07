"""Writes of the support app, one module per sub-domain: calendar access, the chat."""

from support.services.calendar_access import (
    calendar_access_change,
    calendar_access_grant,
    calendar_access_revoke,
    calendar_access_set,
)

__all__ = [
    "calendar_access_change",
    "calendar_access_grant",
    "calendar_access_revoke",
    "calendar_access_set",
]
