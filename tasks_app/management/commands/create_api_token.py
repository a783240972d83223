"""`manage.py create_api_token USERNAME [--name NAME] [--expires-days N]`: issue an API token for
a user, refused after N days if given (else until revoked).

Prints only the token on stdout, so a script can capture it (`TOKEN=$(python manage.py
create_api_token ci-bot --name deploys)`). The token is not stored and cannot be shown again.
Audited as "manage.py".
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks_app.services.common import Actor, ServiceError
from tasks_app.services.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it (only it) once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user the token acts as (an active staff user).")
        parser.add_argument(
            "--name", default="manage.py", help="What the token is for (default: manage.py)."
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=None,
            metavar="N",
            help="Refuse the token after N days (default: it works until revoked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; a token of theirs would not work.")
        try:
            _token, raw = token_create(
                actor=Actor(system="manage.py"),
                name=options["name"],
                user=user,
                expires_in_days=options["expires_days"],
            )
        except (ServiceError, PermissionDenied) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(raw)
