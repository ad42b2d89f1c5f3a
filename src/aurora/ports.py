"""Free loopback ports, for isolated homes (rehearsals, tests, benchmarks).

The ports are drawn from outside the kernel's ephemeral range
(``net.ipv4.ip_local_port_range``), the range that ``connect()`` and ``bind(0)``
take their ports from. Inside it, every client socket of a load test holds a port
for a minute after it closes (TIME_WAIT), and Linux gives ``connect()`` the even
ports and ``bind(0)`` the odd ones: after a few thousand connections no run of 12
consecutive ports was left free, and a port found free could still be taken by the
next outgoing connection before its server bound it. Outside the range, only
servers that name the port take it.

A port found free may still be taken before it is bound again; callers that start a
server on it report "cannot listen" and the rehearsal or test fails plainly.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Below this are the well-known ports and the ones services are commonly configured on.
FIRST_PORT = 10000
LAST_PORT = 65535
#: Fewer quiet ports than this (an ephemeral range widened to nearly everything) and the
#: runs are drawn from all ports from FIRST_PORT up instead.
MIN_QUIET = 2000
TRIES = 200


def quiet_spans(ephemeral: tuple[int, int] | None) -> list[range]:
    """The ports from FIRST_PORT up that the kernel never hands out by itself, given its
    ephemeral range (``None``: unknown, so every port from FIRST_PORT up)."""
    everything = range(FIRST_PORT, LAST_PORT + 1)
    if ephemeral is None:
        return [everything]
    low, high = ephemeral
    spans = [span for span in (range(FIRST_PORT, min(low, LAST_PORT + 1)),
                               range(max(high + 1, FIRST_PORT), LAST_PORT + 1)) if span]
    return spans if sum(len(span) for span in spans) >= MIN_QUIET else [everything]


def ephemeral_range() -> tuple[int, int] | None:
    try:
        low, high = EPHEMERAL_RANGE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def free_ports(*sizes: int) -> list[int]:
    """For each size, the first of that many consecutive free loopback ports. No two of the
    runs overlap: every port stays bound until all are chosen (a port bound twice without
    SO_REUSEADDR is refused, so a run cannot land on one already held)."""
    spans = quiet_spans(ephemeral_range())
    draw = random.SystemRandom()  # not the tests' seeded module state
    held: list[socket.socket] = []
    bases = []
    try:
        for size in sizes:
            fitting = [span for span in spans if len(span) >= size]
            for _ in range(TRIES if fitting else 0):
                span = draw.choices(fitting, weights=[len(s) - size + 1 for s in fitting])[0]
                base = draw.randrange(span.start, span.stop - size + 1)
                try:
                    run = _bound_run(base, size)
                except OSError:
                    continue
                held += run
                bases.append(base)
                break
            else:
                raise OSError(f"no {size} consecutive free ports")
    finally:
        for sock in held:
            sock.close()
    return bases


def _bound_run(base: int, size: int) -> list[socket.socket]:
    run: list[socket.socket] = []
    try:
        for port in range(base, base + size):
            sock = socket.socket()
            run.append(sock)
            sock.bind(("127.0.0.1", port))
    except OSError:
        for sock in run:
            sock.close()
        raise
    return run


def free_port() -> int:
    return free_ports(1)[0]


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (a replica group's metrics)."""
    return free_ports(count)[0]
