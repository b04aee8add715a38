"""The people's REST API (OpenAPI at /schema) and the web app: codes, family, balances, records."""
