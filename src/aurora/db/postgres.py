"""Connections to PostgreSQL from a ``postgresql://`` URL, with operator-readable errors.

Every psycopg failure leaves this module as a ``DatabaseError``: the server being
gone (refused, reset, shut down, failed over) is a ``DatabaseUnavailableError``,
which callers answer with "retry later" (the bridge's 503) and which the pool
recovers from by itself by opening new connections once the server is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from aurora.errors import AuroraError

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

CONNECT_TIMEOUT_S = 5


class DatabaseError(AuroraError):
    """A PostgreSQL statement failed, or the database is not what Aurora expects."""

    exit_code = 2


class DatabaseUnavailableError(DatabaseError):
    """PostgreSQL cannot be reached (down, restarting, failing over): retry later."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc))


def describe(exc: Exception, url: str) -> DatabaseError:
    """One line for a psycopg failure; connection-level failures are ``Unavailable``."""
    import psycopg

    where = redact(url)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.OperationalError | psycopg_pool_timeout()):
        return DatabaseUnavailableError(f"PostgreSQL at {where} is unavailable: {first}")
    return DatabaseError(f"PostgreSQL at {where}: {first}")


def psycopg_pool_timeout() -> type[Exception]:
    import psycopg_pool

    return psycopg_pool.PoolTimeout


@contextlib.contextmanager
def errors(url: str) -> Iterator[None]:
    """Turn psycopg exceptions raised inside into ``DatabaseError``s."""
    import psycopg

    try:
        yield
    except (psycopg.Error, psycopg_pool_timeout()) as exc:
        raise describe(exc, url) from None


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """One connection (autocommit unless asked: transactions are explicit)."""
    import psycopg

    with errors(url):
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="aurora")


def pool(url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0,
         readonly: bool = False,
         ) -> psycopg_pool.ConnectionPool[psycopg.Connection[tuple[object, ...]]]:
    """A pool whose connections are checked before use, so a restarted server is survived.

    Opening does not wait for the server: a pool made while PostgreSQL is down
    raises (inside ``errors``) ``DatabaseUnavailableError`` after ``timeout`` on use,
    and works once it is back.
    """
    import psycopg_pool

    return psycopg_pool.ConnectionPool(
        url, min_size=min_size, max_size=max_size, timeout=timeout, open=True,
        check=psycopg_pool.ConnectionPool.check_connection, name="aurora",
        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": "aurora",
                **({"options": "-c default_transaction_read_only=on"} if readonly else {})})
