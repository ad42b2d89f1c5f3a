"""Free loopback ports, for isolated homes (rehearsals, tests, benchmarks).

A port found free may be taken before it is bound again; callers that start a
server on it report "cannot listen" and the rehearsal or test fails plainly.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (a replica group's metrics)."""
    for _ in range(100):
        base = free_port()
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise OSError(f"no {count} consecutive free ports")
