"""Free loopback ports, for isolated homes (rehearsals, tests, benchmarks).

A port found free may be taken before it is bound again; callers that start a
server on it report "cannot listen" and the rehearsal or test fails plainly.
"""

from __future__ import annotations

import socket


def free_ports(*sizes: int) -> list[int]:
    """For each size, the first of that many consecutive free loopback ports. No two of the
    runs overlap: every port stays bound until all are chosen (a port closed after it was
    found is the kernel's to hand out again, to the very next request)."""
    held: list[socket.socket] = []
    bases = []
    try:
        for size in sizes:
            for _ in range(100):
                run = [_bound(0)]
                base = run[0].getsockname()[1]
                try:
                    run += [_bound(port) for port in range(base + 1, base + size)]
                except OSError:
                    for sock in run:
                        sock.close()
                    continue
                held += run
                bases.append(int(base))
                break
            else:
                raise OSError(f"no {size} consecutive free ports")
    finally:
        for sock in held:
            sock.close()
    return bases


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def free_port() -> int:
    return free_ports(1)[0]


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (a replica group's metrics)."""
    return free_ports(count)[0]
