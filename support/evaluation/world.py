"""Every case starts from the world exactly as written: empty the tables, then build it again.

People become users with a membership (their role) in their practice; calendars get their owner; grants
their level, given by the calendar's owner. Reference data made by migrations (content types,
permissions, groups) is kept; everything else, the graph's checkpoints included, is emptied.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection

from governance.models import Membership, Organization
from governance.services import user_platform_groups_sync
from knowledge.files import articles_import
from knowledge.indexing import reindex_job_run
from knowledge.services import indexing_collected
from support.evaluation.dataset import World
from support.models import Calendar, CalendarAccess

# Made by migrations and post_migrate, the same in every world: kept across cases.
REFERENCE_TABLES = frozenset({"django_content_type", "auth_permission", "auth_group", "auth_group_permissions"})
CHECKPOINT_VERSIONS_TABLE = "checkpoint_migrations"  # the checkpointer's own schema version: kept
KNOWLEDGE_UNAVAILABLE = "the dataset has no articles"


@dataclass
class BuiltWorld:
    """The rows of one case's world, by the dataset's keys (and back, from ids to keys)."""

    world: World
    organizations: dict[str, Organization] = field(default_factory=dict)
    users: dict = field(default_factory=dict)  # member key -> User
    calendars: dict[str, Calendar] = field(default_factory=dict)
    knowledge: bool = False  # whether the dataset's articles were loaded (and the published ones indexed)

    def member_key(self, user_id: int) -> str | None:
        return next((key for key, user in self.users.items() if user.pk == user_id), None)

    def calendar_key(self, calendar_id: int) -> str | None:
        return next((key for key, calendar in self.calendars.items() if calendar.pk == calendar_id), None)


def world_reset() -> None:
    """Empty every table but the reference data, and the graph's checkpoints (no case remembers another)."""
    tables = [
        table
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False)
        if table not in REFERENCE_TABLES
    ]
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=False, allow_cascade=True)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name <> %s",
            [settings.LANGGRAPH_SCHEMA, CHECKPOINT_VERSIONS_TABLE],
        )
        checkpoint_tables = [row[0] for row in cursor.fetchall()]
        if checkpoint_tables:
            quote = connection.ops.quote_name
            names = ", ".join(f"{quote(settings.LANGGRAPH_SCHEMA)}.{quote(table)}" for table in checkpoint_tables)
            cursor.execute(f"TRUNCATE {names}")


def world_build(world: World) -> BuiltWorld:
    """Create the world's practices, people, calendars and grants, exactly as the dataset writes them."""
    built = BuiltWorld(world=world)
    for organization in world.organizations:
        built.organizations[organization.key] = Organization.objects.create(name=organization.name)
    user_model = get_user_model()
    for member in world.members.values():
        first, _, last = member.name.partition(" ")
        user = user_model(username=member.key, first_name=first, last_name=last.strip(), email=member.email)
        user.set_unusable_password()  # they never log in: their turns are played through the services
        user.save()
        user_platform_groups_sync(user=user)
        Membership.objects.create(user=user, organization=built.organizations[member.organization], role=member.role)
        built.users[member.key] = user
    for calendar in world.calendars.values():
        built.calendars[calendar.key] = Calendar.objects.create(
            organization=built.organizations[calendar.organization],
            owner=built.users[calendar.owner],
            name=calendar.name,
        )
    for grant in world.grants:
        calendar = built.calendars[grant.calendar]
        CalendarAccess.objects.create(
            calendar=calendar, user=built.users[grant.member], level=grant.level, granted_by=calendar.owner
        )
    built.knowledge = articles_load(world)
    return built


def articles_load(world: World) -> bool:
    """Import the dataset's articles (all of them: drafts and archived ones too, so that a case can check
    they are never cited) and index the published ones here, before the case plays. Returns whether the
    dataset has articles. A bad article file stops the evaluation with its name (`ImportFailed`)."""
    if world.articles is None:
        return False
    with indexing_collected() as jobs:
        articles_import(world.articles)
    for job in jobs:
        reindex_job_run(job)
    return True
