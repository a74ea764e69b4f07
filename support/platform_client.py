"""The platform API, called over HTTP the way any agent service calls it: with a service JWT (who calls)
and the user's own access token (on whose authority). The API decides as that user.

A worker never reaches into the database to read or change calendar access on someone's behalf: it asks
the API, so the same rules, scoping, audit and security events apply to the agents as to everyone.
"""

import logging
from dataclasses import dataclass

import requests
from django.conf import settings

from governance import correlation
from governance.tokens import mint_service_token

logger = logging.getLogger(__name__)


@dataclass
class APIRefusal(Exception):
    """The API said no: its status, stable code and detail (shown to the person in plain words)."""

    status: int
    code: str
    detail: str


class PlatformClient:
    """One person's view of the platform API. `user_token` is their access token, never chosen by a model."""

    def __init__(self, *, user_token: str, base_url: str | None = None, timeout: float | None = None):
        self.base_url = (base_url or settings.PLATFORM_API_URL).rstrip("/") + "/api/v1"
        self.timeout = timeout or settings.PLATFORM_API_TIMEOUT
        self.session = requests.Session()
        self.session.headers["X-User-Token"] = user_token

    def _call(self, method: str, path: str, *, headers: dict | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {mint_service_token()}", **(headers or {})}
        if correlation.current():  # the API's audit entries then carry this turn's id
            headers[correlation.HEADER] = correlation.current()
        response = self.session.request(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise APIRefusal(response.status_code, body.get("code", "error"), body.get("detail", response.reason))
        return response.json() if response.content else None

    def _all_pages(self, path: str) -> list[dict]:
        rows, page = [], 1
        while True:
            body = self._call("GET", path, params={"page": page, "page_size": 500})
            rows.extend(body["results"])
            if not body.get("next"):
                return rows
            page += 1

    def me(self) -> dict:
        return self._call("GET", "/me/")

    def members(self, organization_id: int) -> list[dict]:
        return self._all_pages(f"/organizations/{organization_id}/members/")

    def calendars(self) -> list[dict]:
        return self._all_pages("/calendars/")

    def accesses(self, calendar_id: int) -> list[dict]:
        return self._all_pages(f"/calendars/{calendar_id}/access/")

    def set_access(self, calendar_id: int, user_id: int, level: str, *, proposal_id: int | None = None) -> dict:
        """`proposal_id`: the confirmed proposal this carries out (the change's audit entry links to it)."""
        return self._call(
            "PUT",
            f"/calendars/{calendar_id}/access/{user_id}/",
            json={"level": level},
            headers=_proposal_header(proposal_id),
        )

    def revoke_access(self, calendar_id: int, user_id: int, *, proposal_id: int | None = None) -> None:
        self._call("DELETE", f"/calendars/{calendar_id}/access/{user_id}/", headers=_proposal_header(proposal_id))


PROPOSAL_HEADER = "X-Alfred-Proposal"


def _proposal_header(proposal_id: int | None) -> dict:
    return {PROPOSAL_HEADER: str(proposal_id)} if proposal_id is not None else {}
