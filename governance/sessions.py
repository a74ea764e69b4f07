"""Live sockets follow the session they were opened with.

`session_is_current` re-reads a socket's session from the session store, as Django's own `get_user` does for a
request: the session still exists and is not expired, it still names this user, the password has not changed
since it was made (its auth hash), and the account (and, for the console, the staff role) is still active.
`session_sockets_close` closes the open sockets of a session (a logout) or of every session of a person.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

from governance.live import group_send_live


def user_group(user_id: int) -> str:
    """The channel-layer group of a person's open sockets."""
    return f"user.{user_id}"


def session_is_current(*, session_key: str | None, user, room: str = "members") -> bool:
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    data = store.load()  # an ended or expired session loads empty
    if str(data.get(SESSION_KEY, "")) != str(user.pk) or BACKEND_SESSION_KEY not in data:
        return False
    fresh = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    if fresh is None or (room == "support" and not fresh.is_support_staff):
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), fresh.get_session_auth_hash())


def session_sockets_close(*, user_id: int, session_key: str | None = None) -> None:
    """Close the person's sockets opened with `session_key` (all of them when None), with code 4401."""
    group_send_live(user_group(user_id), {"type": "session.ended", "session_key": session_key})


def on_logged_out(sender, request=None, user=None, **kwargs) -> None:
    """django's user_logged_out: the sockets of the session that just ended close now, not at their next frame."""
    session = getattr(request, "session", None)
    if user is not None and session is not None and session.session_key:
        session_sockets_close(user_id=user.pk, session_key=session.session_key)
