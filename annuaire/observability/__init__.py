"""What a running server tells its operators: metrics, the access log, and its LDAP workers' freshness.

- `rundir`: the directory the processes of one `annuaire serve` share (metric files, LDAP status);
- `metrics`: the instruments every process records into, and the Prometheus exposition;
- `accesslog`: one line per HTTP request or LDAP operation, text or JSON, secrets left out;
- `asgi` and `ldap`: where HTTP and LDAP requests are observed;
- `ldapstatus`: each LDAP worker's journal position, for `/readyz` and `/metrics`;
- `scrape`: what is read from the store when `/metrics` is asked (runs, FHIR backlog, LDAP lags).

docs/observability.md describes the endpoints, the metrics and the log.
"""
