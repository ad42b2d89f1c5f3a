"""PostgreSQL storage of the ledger (``database_url`` = ``postgresql://...``).

The same three append-only tables as the SQLite file, plus ``ledger_tree``: one
row holding the tree size. Every append transaction locks that row
(``SELECT ... FOR UPDATE``) before reading the size, so writers in any number of
processes on any number of machines take turns and number their leaves from the
size they saw: one total order, no gaps, no forks (the pattern of Tessera's SQL
drivers). A trigger lets the row's size only grow.
"""

from __future__ import annotations

from aurora.db.schema import Schema

_APPEND_ONLY = ("audit_log", "merkle_hashes", "checkpoints")


def _append_only_triggers() -> str:
    out = ["""
CREATE OR REPLACE FUNCTION aurora_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""]
    for table in _APPEND_ONLY:
        out.append(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "
                   f"{table} FOR EACH ROW EXECUTE FUNCTION aurora_ledger_append_only();")
        out.append(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION aurora_ledger_append_only();")
    return "\n".join(out)


DDL = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY CHECK (seq >= 0),  -- leaf index, from 0, no gaps
    ts TEXT NOT NULL,         -- RFC 3339 UTC, microseconds, Z; assigned at append
    kind TEXT NOT NULL,
    treaty_id TEXT,
    tenant_id TEXT,
    subject TEXT,             -- the order nonce for order/decision/drop entries
    payload TEXT NOT NULL,    -- RFC 8785 canonical JSON of the entry: the leaf data
    leaf_hash BYTEA NOT NULL  -- SHA-256(0x00 || payload)
);
CREATE INDEX IF NOT EXISTS audit_log_kind_ts ON audit_log(kind, ts);
CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log(ts);
CREATE TABLE IF NOT EXISTS merkle_hashes (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),  -- tlog stored hash index
    hash BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size BIGINT PRIMARY KEY,  -- one checkpoint per size: two roots for a size cannot exist
    root_hash BYTEA NOT NULL CHECK (length(root_hash) = 32),
    ts TEXT NOT NULL,
    note TEXT NOT NULL        -- C2SP signed note of the tlog checkpoint
);
CREATE TABLE IF NOT EXISTS ledger_tree (
    id SMALLINT PRIMARY KEY CHECK (id = 1),  -- exactly one row: the lock writers queue on
    size BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO ledger_tree (id, size) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION aurora_ledger_tree_grows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.size < OLD.size THEN
        RAISE EXCEPTION 'ledger_tree: the tree size only grows'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER ledger_tree_grows BEFORE UPDATE OR DELETE ON ledger_tree
    FOR EACH ROW EXECUTE FUNCTION aurora_ledger_tree_grows();
""" + _append_only_triggers()

SCHEMA = Schema(name="ledger", version=1,
                tables=("audit_log", "merkle_hashes", "checkpoints", "ledger_tree"), ddl=DDL)
