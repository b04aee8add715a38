"""The append-only ledger, year-to-date totals and account balances, and the check that ties them together."""
