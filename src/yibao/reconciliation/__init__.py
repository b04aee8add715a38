"""Reconciliation with institutions: totals (3201) and detail files (3202)."""
