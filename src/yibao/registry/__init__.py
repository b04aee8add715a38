"""Insured people, enrolments, identities, accounts, households, institutions, staff."""
