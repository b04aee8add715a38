"""Maternity allowance (生育津贴): computed from a maternity settlement's birth information, paid without an application."""
