"""Observatory tests (issue 4): rules, queries, reports, signatures, health checks."""
