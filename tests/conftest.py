"""Fixtures shared by the whole suite. Everything runs against the real PostgreSQL (with pgvector) and Redis."""

from dataclasses import dataclass

import pytest

from tests import processes
from tests.factories import CalendarAccessFactory, CalendarFactory, MembershipFactory, OrganizationFactory, UserFactory


@dataclass
class Practice:
    """Harbour Dental: Anna owns two calendars, Ben one; Tom views Anna's main one; Lea manages Ben's.
    Northside is another practice: Iris owns a calendar there."""

    org: object
    anna: object
    ben: object
    tom: object
    tomas: object
    lea: object
    novak_main: object
    novak_surgery: object
    okafor_main: object
    other_org: object
    iris: object
    walsh_main: object


def _member(org, username, first, last, role):
    user = UserFactory(username=username, first_name=first, last_name=last)
    MembershipFactory(user=user, organization=org, role=role)
    return user


@pytest.fixture
def practice(db) -> Practice:
    org = OrganizationFactory(name="Harbour Dental Practice")
    anna = _member(org, "anna", "Anna", "Novak", "practitioner")
    ben = _member(org, "ben", "Ben", "Okafor", "practitioner")
    tom = _member(org, "tom", "Tom", "Fisher", "secretary")
    tomas = _member(org, "tomas", "Tomas", "Reyes", "assistant")
    lea = _member(org, "lea", "Léa", "Girard", "secretary")
    novak_main = CalendarFactory(organization=org, owner=anna, name="Dr Novak appointments")
    novak_surgery = CalendarFactory(organization=org, owner=anna, name="Dr Novak surgery")
    okafor_main = CalendarFactory(organization=org, owner=ben, name="Dr Okafor appointments")
    CalendarAccessFactory(calendar=novak_main, user=tom, level="view", granted_by=anna)
    CalendarAccessFactory(calendar=okafor_main, user=lea, level="manage", granted_by=ben)
    other_org = OrganizationFactory(name="Northside Medical Centre")
    iris = _member(other_org, "iris", "Iris", "Walsh", "practitioner")
    walsh_main = CalendarFactory(organization=other_org, owner=iris, name="Dr Walsh clinic")
    return Practice(
        org, anna, ben, tom, tomas, lea, novak_main, novak_surgery, okafor_main, other_org, iris, walsh_main
    )


@pytest.fixture(scope="session", autouse=True)
def _fresh_cache():
    """Per-person rate-limit counters of an earlier run (same user ids in a recreated test database) must not
    count against this one. Only those keys: the database also holds the broker's queues and the channel layer."""
    from tests.support.console_data import rate_limits_reset

    rate_limits_reset()


@pytest.fixture(scope="session")
def asgi_server(django_db_setup):
    """A real daphne process serving Alfred (HTTP and WebSocket) on the test database."""
    with processes.asgi_server() as url:
        yield url


@pytest.fixture(scope="module")
def celery_worker_process(asgi_server):
    """A real Celery worker process (offline engine) on the suite's broker and the test database; it calls
    the API of `asgi_server` over HTTP, as the agents do in production. Module-scoped, so that a module
    with another kind of worker (another LLM provider) never shares the queue with this one."""
    with processes.celery_worker(platform_api_url=asgi_server) as worker:
        yield worker


@pytest.fixture
def as_user():
    """An API client logged in as the given user (a browser session, CSRF checks off as in DRF's test client)."""

    def client_for(user):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_login(user)
        return client

    return client_for
