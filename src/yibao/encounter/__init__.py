"""Outpatient, inpatient and pharmacy visits: registration, fee lines, pre-settle, settle, reverse."""
