"""DDL the migrations share: the triggers that keep journal tables append-only."""

from __future__ import annotations

from alembic import op


def append_only(tables: tuple[str, ...]) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on journal tables."""
    if op.get_bind().dialect.name == "sqlite":
        for table in tables:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'lendcore: {table} is append-only: "
                    f"{action} refused'); END"
                )
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION lendcore_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'lendcore: % is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
        END
        $$
        """
    )
    for table in tables:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION lendcore_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION lendcore_refuse_change()"
        )


def drop_append_only(tables: tuple[str, ...], *, drop_function: bool = True) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in tables:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        return
    for table in tables:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    if drop_function:
        op.execute("DROP FUNCTION IF EXISTS lendcore_refuse_change()")
