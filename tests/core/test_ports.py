"""Free ports for isolated homes: no two services of one home are given the same port."""

from __future__ import annotations

import socket

from aurora import ports
from aurora.ports import free_ports
from aurora.soak.isolate import PORTS, own_ports


def _ranges(bases: list[int], sizes: tuple[int, ...]) -> list[range]:
    return [range(base, base + size) for base, size in zip(bases, sizes, strict=True)]


def test_runs_do_not_overlap_and_are_free() -> None:
    sizes = (1,) * 50 + (4, 12, 1, 8)
    ports = [p for r in _ranges(free_ports(*sizes), sizes) for p in r]
    assert len(ports) == len(set(ports)) == sum(sizes)
    for port in ports:  # free once handed out: every one can be bound
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_home_gets_distinct_ports_for_every_service_and_replica() -> None:
    # a replica's metrics port equal to Prometheus's made `aurora up --replicas 4` refuse
    # to start in one test run; it was chosen after Prometheus's port had been closed
    for _ in range(20):
        stack: dict[str, object] = {}
        own_ports(stack, replicas=4, split=12)
        singles = [stack[name] for name in PORTS]
        replica = int(str(stack["replica_metrics_port"]))
        split = int(str(stack["split_metrics_port"]))
        ports = [*singles, *range(replica, replica + 4), *range(split, split + 12)]
        assert len(ports) == len(set(ports))


def _time_wait_port() -> int:
    """A loopback port held only by a TIME_WAIT connection: its server closed first."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: TIME_WAIT on the server's port
        client.recv(1)
        client.close()
    return port


def test_a_port_held_only_by_time_wait_is_free_as_our_servers_see_it() -> None:
    port = _time_wait_port()
    with socket.socket() as plain:  # what the probe did before: refused
        try:
            plain.bind(("127.0.0.1", port))
            refused = False
        except OSError:
            refused = True
    assert refused  # else this test shows nothing
    ports._bound(port).close()  # the probe accepts it ...
    with socket.socket() as server:  # ... and a server binds it as ours do
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()


def test_a_port_someone_listens_on_is_not_free() -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = int(other.getsockname()[1])
        try:
            ports._bound(port).close()
            taken = False
        except OSError:
            taken = True
        assert taken
