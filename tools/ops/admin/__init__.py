"""llmaas-admin (tenants, keys, usage, audit): `cli` (main, channel, errors), `parser`,
`commands` (one Admin API call each), `output` (dicts and tables)."""
