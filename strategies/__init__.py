"""Shipped strategies. Each module declares NAME, HELP, PARAMS, entry(p) and optionally exit(p)."""
