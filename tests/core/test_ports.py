"""Free ports for isolated homes: no two services of one home are given the same port."""

from __future__ import annotations

import socket

from aurora.ports import FIRST_PORT, ephemeral_range, free_ports, quiet_spans
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


def test_ports_lie_outside_the_range_the_kernel_hands_out() -> None:
    # connect() and bind(0) draw from the ephemeral range; a port there, found free, is
    # the next outgoing connection's to take before its server binds it
    ephemeral = ephemeral_range()
    assert ephemeral is not None  # Linux, as CI runs
    low, high = ephemeral
    sizes = (1,) * 20 + (12, 4)
    for run in _ranges(free_ports(*sizes), sizes):
        assert all(port < low or port > high for port in run), run
        assert run.start >= FIRST_PORT


def test_runs_are_found_while_thousands_of_client_sockets_linger() -> None:
    # after the load tests, the even ephemeral ports were held by closed client sockets
    # (TIME_WAIT, a minute each) and no 12 consecutive ports were free in 100 tries;
    # 8,000 such sockets were enough to reproduce it
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(128)
        for _ in range(10_000):
            with socket.create_connection(server.getsockname()):
                accepted, _ = server.accept()
            accepted.close()  # after the client: the client's port waits in TIME_WAIT
    sizes = (12, 12, 4)
    ports = [p for r in _ranges(free_ports(*sizes), sizes) for p in r]
    assert len(set(ports)) == sum(sizes)


def test_quiet_spans_around_the_ephemeral_range() -> None:
    assert quiet_spans((32768, 60999)) == [range(FIRST_PORT, 32768), range(61000, 65536)]
    assert quiet_spans((1024, 65535)) == [range(FIRST_PORT, 65536)]  # nothing quiet left
    assert quiet_spans((40000, 65535)) == [range(FIRST_PORT, 40000)]
    assert quiet_spans(None) == [range(FIRST_PORT, 65536)]
