"""Live-stack tests (issues 4 and 6): the real bridge, providers, traffic, Prometheus,
Alertmanager and incident receiver, started by ``aurora.stack.up`` on free loopback ports."""
