"""`seed_demo`: the demo practices and accounts, created once however often it runs."""

import json

from django.core.management import call_command

from governance.models import Membership, Organization, User
from support.models import Calendar, CalendarAccess


def seed(capsys) -> dict:
    call_command("seed_demo", "--json")
    return json.loads(capsys.readouterr().out)


def test_seed_is_idempotent_and_prints_the_accounts(db, capsys):
    first = seed(capsys)
    counts = [
        Organization.objects.count(),
        User.objects.count(),
        Calendar.objects.count(),
        CalendarAccess.objects.count(),
    ]
    second = seed(capsys)

    assert first == second
    assert [
        Organization.objects.count(),
        User.objects.count(),
        Calendar.objects.count(),
        CalendarAccess.objects.count(),
    ] == counts
    assert counts == [2, 9, 4, 1]
    assert {"username", "password", "role", "name", "organization"} <= set(first["accounts"][0])


def test_demo_world_has_what_the_chat_needs(db, capsys):
    seed(capsys)
    lilas = Organization.objects.get(name="Cabinet médical des Lilas")

    practitioners = Membership.objects.filter(organization=lilas, role="practitioner")
    staff = Membership.objects.filter(organization=lilas).exclude(role="practitioner").select_related("user")
    assert practitioners.count() == 2
    assert max(Calendar.objects.filter(owner=m.user).count() for m in practitioners) == 2
    assert staff.count() == 3
    assert len({m.user.first_name for m in staff}) == 2  # two of them share a first name
    assert User.objects.get(username="sophie.support").platform_role == "support"
    assert User.objects.get(username="camille.compliance").platform_role == "compliance"


def test_demo_logins_work_and_support_staff_can_open_the_admin(db, client, capsys):
    seed(capsys)

    assert client.login(username="sophie.support", password="alfred-demo")
    response = client.get("/admin/support/calendar/")

    assert response.status_code == 200
    assert "Consultations Dr Martin" in response.content.decode()
    assert client.get("/admin/governance/securityevent/").status_code == 200


def test_demo_articles_are_created_once_and_staff_edits_survive_a_reseed(
    db, capsys, django_capture_on_commit_callbacks
):
    from knowledge.models import Article, ReindexJob
    from knowledge.services import ArticleContent, article_update

    with django_capture_on_commit_callbacks() as callbacks:  # the reindex jobs go to the worker after commit
        seed(capsys)
    published = Article.objects.filter(status="published")
    assert published.count() >= 15 and Article.objects.filter(status="draft").exists()
    assert set(Article.objects.values_list("language", flat=True)) == {"en", "fr"}
    assert ReindexJob.objects.count() == published.count() == len(callbacks)

    article = Article.objects.get(slug="change-password")
    content = ArticleContent(title=article.title, language="en", body="Edited by staff.")
    article_update(actor=None, article=article, content=content)
    seed(capsys)
    assert Article.objects.get(slug="change-password").body == "Edited by staff.\n"
    assert ReindexJob.objects.count() == published.count()  # nothing new to index
