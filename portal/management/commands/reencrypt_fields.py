"""Re-encrypt every stored secret under the newest key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from core.crypto import encrypted_fields, rotate


class Command(BaseCommand):
    help = "Re-encrypt every encrypted value under the newest key and print counts per field."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model, field in encrypted_fields():
            table = connection.ops.quote_name(model._meta.db_table)
            column = connection.ops.quote_name(field.column)
            pk = connection.ops.quote_name(model._meta.pk.column)
            count = 0
            # Identifiers come from model metadata; values are parameters.
            select = f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''"  # noqa: S608
            update = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s"  # noqa: S608
            with transaction.atomic(), connection.cursor() as cursor:
                # Raw SQL: stored tokens are rotated without decrypting them into models.
                cursor.execute(select)
                for row_pk, token in cursor.fetchall():
                    try:
                        rotated = rotate(token)
                    except InvalidToken as error:
                        raise CommandError(
                            f"{model._meta.label}.{field.name} of row {row_pk} cannot be decrypted "
                            "with FIELD_ENCRYPTION_KEYS: was a key removed before re-encrypting? "
                            "Nothing of this field was changed."
                        ) from error
                    cursor.execute(update, [rotated, row_pk])
                    count += 1
            total += count
            self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
        self.stdout.write(f"total: {total} re-encrypted")
