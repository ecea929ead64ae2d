"""``manage.py superuser``: one admin account, in every database the project's modes use.

``make run`` and ``make demo`` keep separate databases (the demo's simulated
market stays out of the live one), so ``createsuperuser`` made the account in one
of them only, and on a database never migrated it failed ("no such table:
auth_user") and left an empty file behind. This asks once, migrates each database
first, and creates the account or, when the name exists, sets its password and
makes it staff and superuser again.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pairs_project.common.masking import url_credentials_masked

USERNAME_ENV = "DJANGO_SUPERUSER_USERNAME"
PASSWORD_ENV = "DJANGO_SUPERUSER_PASSWORD"
EMAIL_ENV = "DJANGO_SUPERUSER_EMAIL"


class Command(BaseCommand):
    help = (
        "Create or update an admin account (staff and superuser) in the configured database, or in each "
        f"--database-url. Asks for the name and password unless {USERNAME_ENV} and {PASSWORD_ENV} are set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=None, help=f"account name (default ${USERNAME_ENV}, or asked)")
        parser.add_argument("--email", default=None, help=f"e-mail address (default ${EMAIL_ENV}, or none)")
        parser.add_argument(
            "--database-url",
            action="append",
            default=[],
            metavar="URL",
            help="a database to put the account in (repeat for several; default: DATABASE_URL's)",
        )

    def handle(
        self, *args: Any, username: str | None, email: str | None, database_url: list[str], **options: Any
    ) -> None:
        username = username or os.environ.get(USERNAME_ENV) or self._ask("Username", default="admin")
        email = email if email is not None else os.environ.get(EMAIL_ENV, "")
        password = os.environ.get(PASSWORD_ENV) or self._ask_password()
        try:
            validate_password(password, get_user_model()(username=username, email=email))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if not database_url:
            self._put(username, email, password)
            return
        # Each database in a process of its own: settings are read once, at start.
        env = {**os.environ, USERNAME_ENV: username, PASSWORD_ENV: password, EMAIL_ENV: email}
        for url in database_url:
            done = subprocess.run(
                [sys.executable, sys.argv[0], "superuser"], env={**env, "DATABASE_URL": url}, check=False
            )
            if done.returncode != 0:
                raise CommandError(f"could not put the account in {url_credentials_masked(url)}")

    def _put(self, username: str, email: str, password: str) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        users = get_user_model()
        user, created = users.objects.get_or_create(username=username, defaults={"email": email})
        user.set_password(password)
        user.is_staff = user.is_superuser = user.is_active = True
        if email:
            user.email = email
        user.save()
        where = url_credentials_masked(settings.DATABASE_URL)
        self.stdout.write(f"{'created' if created else 'updated'} admin account {username!r} in {where}")

    def _ask(self, prompt: str, *, default: str) -> str:
        if not sys.stdin.isatty():
            raise CommandError(f"no terminal to ask on: set {USERNAME_ENV} and {PASSWORD_ENV}")
        return input(f"{prompt} [{default}]: ").strip() or default

    def _ask_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError(f"no terminal to ask on: set {PASSWORD_ENV}")
        for _ in range(3):
            password = getpass.getpass("Password: ")
            if not password:
                self.stderr.write("The password cannot be empty.")
            elif password != getpass.getpass("Password (again): "):
                self.stderr.write("The two passwords differ.")
            else:
                return password
        raise CommandError("no password given")
