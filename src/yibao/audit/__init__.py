"""The audit trail: an append-only log of security-relevant events."""
