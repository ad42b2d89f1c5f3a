"""PostgreSQL, for the replicated mode (``database_url`` = ``postgresql://...``).

* ``aurora.db.postgres``: connections and pools from a URL, psycopg errors mapped to
  ``DatabaseError`` / ``DatabaseUnavailableError`` (one operator-readable line).
* ``aurora.db.schema``: the schema registry. Each component that keeps tables in
  PostgreSQL registers its DDL there; ``aurora db init`` applies all of it.
* ``aurora.db.cluster``: a local cluster (initdb + pg_ctl) for ``aurora db up`` and the
  tests' throwaway clusters.

Nothing here is imported by the SQLite default; psycopg is loaded only in this mode.
"""
