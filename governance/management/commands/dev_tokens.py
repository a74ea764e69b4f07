"""Print a service JWT and a local user token, to call the platform API by hand (development only)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance.tokens import issue_local_user_token, mint_service_token


class Command(BaseCommand):
    help = "Print the two tokens an agent would send for USERNAME, as curl headers (local login mode, dev keys)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        if not settings.DEV_SECRETS:
            raise CommandError("dev_tokens works only with development secrets (DEBUG or the embedded database).")
        if settings.OIDC_ENABLED:
            raise CommandError("In OIDC mode user tokens come from the identity provider, not from Alfred.")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        self.stdout.write(
            f"-H 'Authorization: Bearer {mint_service_token()}' -H 'X-User-Token: {issue_local_user_token(user)}'"
        )
