"""Storage plumbing: one SQLAlchemy layer over SQLite (embedded) and PostgreSQL (production)."""
