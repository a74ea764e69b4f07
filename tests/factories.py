"""Test data: a practice with members and calendars, built through the models."""

import factory
from django.contrib.auth import get_user_model

from governance.models import Membership, Organization
from support.models import Calendar, CalendarAccess


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.django.Password("pw-for-tests")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Practice {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.SECRETARY


class CalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Calendar

    organization = factory.SubFactory(OrganizationFactory)
    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Calendar {n}")


class CalendarAccessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarAccess

    calendar = factory.SubFactory(CalendarFactory)
    user = factory.SubFactory(UserFactory)
    level = "view"


def article_published(slug: str, title: str, body: str, *, language: str = "en", publish: bool = True, actor=None):
    """An article created through the knowledge services and, when published, indexed here with the local
    embeddings (committed data is what a worker process reads)."""
    from knowledge.indexing import reindex_job_run
    from knowledge.services import ArticleContent, article_create, indexing_collected

    with indexing_collected() as jobs:
        article = article_create(
            actor=actor,
            slug=slug,
            content=ArticleContent(title=title, language=language, body=body),
            publish=publish,
        )
    for job in jobs:
        reindex_job_run(job)
    return article
