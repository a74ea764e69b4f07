"""Create (or bring back) the demo practices, people, calendars and knowledge articles. Idempotent: run it as
often as you like (articles are only created when missing; indexing is queued for the worker)."""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from governance.models import Membership, Organization
from governance.services import user_platform_groups_sync
from knowledge.files import articles_import
from support.models import Calendar, CalendarAccess

DEMO_PASSWORD = "alfred-demo"
DEMO_ARTICLES = Path(settings.BASE_DIR) / "knowledge" / "demo_articles"  # created once, then left to staff

# (username, first name, last name, practice, role); practice None = platform staff
PEOPLE = [
    ("claire.martin", "Claire", "Martin", "lilas", Membership.Role.PRACTITIONER),
    ("hugo.lefevre", "Hugo", "Lefèvre", "lilas", Membership.Role.PRACTITIONER),
    ("julie.bernard", "Julie", "Bernard", "lilas", Membership.Role.SECRETARY),
    ("julie.moreau", "Julie", "Moreau", "lilas", Membership.Role.ASSISTANT),
    ("karim.haddad", "Karim", "Haddad", "lilas", Membership.Role.SECRETARY),
    ("anna.novak", "Anna", "Novak", "harbour", Membership.Role.PRACTITIONER),
    ("tom.fisher", "Tom", "Fisher", "harbour", Membership.Role.SECRETARY),
    ("sophie.support", "Sophie", "Durand", None, "support"),
    ("camille.compliance", "Camille", "Roux", None, "compliance"),
]
PRACTICES = {"lilas": "Cabinet médical des Lilas", "harbour": "Harbour Dental Practice"}
CALENDARS = [  # (owner, name)
    ("claire.martin", "Consultations Dr Martin"),
    ("claire.martin", "Téléconsultations Dr Martin"),
    ("hugo.lefevre", "Consultations Dr Lefèvre"),
    ("anna.novak", "Dr Novak appointments"),
]
GRANTS = [("Consultations Dr Martin", "julie.bernard", "view", "claire.martin")]


class Command(BaseCommand):
    help = "Create the demo practices, members, calendars and staff accounts (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the demo accounts as JSON")

    @transaction.atomic
    def handle(self, *args, **options):
        organizations = {key: self._organization(name) for key, name in PRACTICES.items()}
        users = {}
        accounts = []
        for username, first, last, practice, role in PEOPLE:
            user = self._user(username, first, last, platform_role="member" if practice else role)
            users[username] = user
            if practice:
                Membership.objects.update_or_create(
                    user=user, organization=organizations[practice], defaults={"role": role, "is_active": True}
                )
            accounts.append(
                {
                    "username": username,
                    "password": DEMO_PASSWORD,
                    "role": role,
                    "name": user.display_name,
                    "organization": PRACTICES[practice] if practice else None,
                }
            )
        calendars = {}
        for owner, name in CALENDARS:
            organization = users[owner].memberships.get().organization
            calendars[name], _ = Calendar.objects.get_or_create(
                organization=organization, owner=users[owner], name=name
            )
        for calendar, username, level, granted_by in GRANTS:
            CalendarAccess.objects.get_or_create(
                calendar=calendars[calendar],
                user=users[username],
                defaults={"level": level, "granted_by": users[granted_by]},
            )
        articles = articles_import(DEMO_ARTICLES, actor=users["sophie.support"], only_new=True)
        if options["json"]:
            self.stdout.write(json.dumps({"accounts": accounts}, ensure_ascii=False))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo data ready: {len(accounts)} accounts, password {DEMO_PASSWORD!r}; "
                    f"{len(articles.created)} new knowledge articles (the worker indexes them)."
                )
            )

    @staticmethod
    def _organization(name: str) -> Organization:
        organization, _ = Organization.objects.get_or_create(name=name)
        return organization

    @staticmethod
    def _user(username: str, first: str, last: str, *, platform_role: str):
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@demo.alfred.example",
                "platform_role": platform_role,
                "is_staff": platform_role == "support",
            },
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user_platform_groups_sync(user=user)
        return user
