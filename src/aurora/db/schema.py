"""The schema registry: every table Aurora keeps in PostgreSQL, and ``aurora db init``.

A component that stores state in PostgreSQL declares a ``Schema`` (its name, the
tables it owns, idempotent DDL: ``CREATE TABLE IF NOT EXISTS``, ``CREATE OR REPLACE``)
in its own module, and that module is listed in ``OWNERS``. ``init`` imports the
owners, refuses a database that holds tables nobody registered (it belongs to
something else), then applies every DDL in one transaction under an advisory lock,
so replicas starting together do not race, and records the versions applied.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass

from aurora.db.postgres import DatabaseError, connect, errors, redact

# modules that define a module-level ``SCHEMA: Schema``, applied in this order
OWNERS: tuple[str, ...] = (
    "aurora.ledger.pgstore",
    "aurora.policy.pgstate",  # the treaty state (after the ledger: it indexes audit_log)
)
VERSIONS_TABLE = "aurora_schema"
_LOCK_KEY = 0x41555252  # pg_advisory_xact_lock key for schema changes ("AURR")


@dataclass(frozen=True)
class Schema:
    name: str                 # component, e.g. "ledger"
    version: int
    tables: tuple[str, ...]   # every table the DDL creates
    ddl: str                  # idempotent: safe to apply to a database that has it already


def registered(owners: Sequence[str] = OWNERS) -> list[Schema]:
    schemas = []
    for module in owners:
        schema = getattr(importlib.import_module(module), "SCHEMA", None)
        if not isinstance(schema, Schema):
            raise TypeError(f"{module} lists in aurora.db.schema.OWNERS but has no SCHEMA")
        schemas.append(schema)
    return schemas


def existing_tables(url: str) -> set[str]:
    with errors(url), connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {str(name) for (name,) in rows}


def foreign_tables(found: set[str], schemas: Sequence[Schema]) -> set[str]:
    """Tables in the database that no registered component owns."""
    ours = {VERSIONS_TABLE}.union(*(s.tables for s in schemas))
    return found - ours


def init(url: str, owners: Sequence[str] = OWNERS) -> list[Schema]:
    """Create every registered table (idempotent); refuse a database holding other tables."""
    schemas = registered(owners)
    with errors(url), connect(url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        found = {str(name) for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if foreign := foreign_tables(found, schemas):
            raise DatabaseError(
                f"{redact(url)} holds tables Aurora does not own ({', '.join(sorted(foreign))}); "
                "refusing to initialise it: give Aurora a database of its own")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} ("
                     "component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        for schema in schemas:
            conn.execute(schema.ddl)
            conn.execute(f"INSERT INTO {VERSIONS_TABLE} (component, version) VALUES (%s, %s) "
                         "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                         (schema.name, schema.version))
        conn.commit()
    return schemas


def is_initialised(url: str, owners: Sequence[str] = OWNERS) -> bool:
    found = existing_tables(url)
    return all(set(s.tables) <= found for s in registered(owners))
