"""Print a new API token for a user; its key is shown here once and stored as a digest."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from tenants.models import User
from tenants.services import api_token_create


class Command(BaseCommand):
    help = "Create a named API token for USERNAME and print its key (shown this once only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for (e.g. 'CRM sync').")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        try:
            token, key = api_token_create(user=user, name=options["name"])
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stderr.write(f"API token {token.name!r} for {user.username} (prefix {token.prefix}):")
        self.stdout.write(key)
