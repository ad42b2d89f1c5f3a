"""Error types shown to operators as one clear line.

Every error that bad input, a bad file or an unreachable service can cause is
an ``AuroraError``; the CLI prints its message and exits with ``exit_code``.
"""

from __future__ import annotations


class AuroraError(Exception):
    """An error whose message is fit to show an operator as one line."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(AuroraError):
    """A configuration, treaty or key file is missing or invalid."""

    exit_code = 2


class KeyFileError(ConfigError):
    """A key file is missing, unreadable or not an Ed25519 key."""


class UnreachableError(AuroraError):
    """A service the command needs (bridge, Prometheus, ...) did not answer."""

    exit_code = 2
