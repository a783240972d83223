"""`manage.py ensure_admin`: the local admin login that `make run` creates once.

Username `admin` (or DJANGO_SUPERUSER_USERNAME) with a random password printed only when the user
is created; re-runs keep it. DJANGO_SUPERUSER_PASSWORD, when set, is applied every time.
"""

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the local admin user if it does not exist and print its password once."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip() or "admin"
        given_password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is not None:
            if given_password:
                user.set_password(given_password)
                user.save(update_fields=["password"])
                self.stdout.write(f"Admin user '{username}': password set from the environment.")
            else:
                self.stdout.write(f"Admin user '{username}' exists; its password is unchanged.")
            return
        password = given_password or secrets.token_urlsafe(12)
        user_model._default_manager.db_manager().create_superuser(
            username=username, email="", password=password
        )
        if given_password:
            self.stdout.write(f"Created admin user '{username}' with the password you gave.")
            return
        line = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"{line}\n  Local admin login (shown only this once):\n"
                f"    username: {username}\n    password: {password}\n"
                f"  Forgot it? python manage.py changepassword {username}\n{line}"
            )
        )
