"""Plumbing shared by every domain: errors, clock, money, identifiers, crypto, input schemas."""
