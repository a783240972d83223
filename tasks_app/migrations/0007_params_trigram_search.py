"""On PostgreSQL, a trigram index serving the runs history's parameter-text search.

The search is `UPPER(params::text) LIKE UPPER('%text%')` (Django's `icontains` on the
parameters cast to text); without an index it reads the whole ledger. A GIN index of pg_trgm
trigrams on that exact expression answers it from the index. SQLite has no such index and
keeps the scan (development databases are small).

Built CONCURRENTLY (so ledger writes go on while it builds on a large table), which cannot
run in a transaction: the migration is not atomic. At 1M runs it takes ~20 s and 58 MB. The
expression must stay exactly what the ORM writes (`UPPER(("params")::text)`), or the planner
cannot use it: tests/integration/test_params_search.py checks the plan.
"""

from typing import Any

from django.db import migrations

INDEX = "run_params_trgm_idx"


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [INDEX]
        )
        found = cursor.fetchone()
    if found is not None and found[0]:
        # A concurrent build that failed (cancelled, a deadlock) leaves an invalid index that
        # no query uses but every write updates; IF NOT EXISTS would keep it. Build it again.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON tasks_app_run "
        "USING gin ((UPPER((params)::text)) gin_trgm_ops)"
    )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("tasks_app", "0006_seal_sensitive_params")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
