"""Settings from the environment (``YIBAO_*``), with defaults for the embedded laptop setup."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_database_url() -> str:
    return f"sqlite:///{Path(os.environ.get('YIBAO_HOME', 'var')).resolve() / 'yibao.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("YIBAO_DATABASE_URL") or _default_database_url())
    # Receiver region written into inf_refmsgid (the platform's own admdvs).
    platform_admdvs: str = field(default_factory=lambda: os.environ.get("YIBAO_PLATFORM_ADMDVS", "370100"))
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("YIBAO_MAX_BODY_BYTES", str(4 * 1024 * 1024))))
    # How far a request's signature timestamp may stray from our clock.
    signature_window_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SIGNATURE_WINDOW_S", "300")))
    # A sign-in (9001) stays valid this long unless signed out (9002).
    sign_in_ttl_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SIGN_IN_TTL_S", str(24 * 3600))))
    # e-credential: how long a displayed code lives, how long and how often a visit token (ecToken) works
    qr_ttl_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_QR_TTL_S", "60")))
    ec_token_ttl_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_EC_TOKEN_TTL_S", str(12 * 3600))))
    ec_token_max_uses: int = field(default_factory=lambda: int(os.environ.get("YIBAO_EC_TOKEN_MAX_USES", "50")))
    session_ttl_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SESSION_TTL_S", str(12 * 3600))))
    demo_seed: int = field(default_factory=lambda: int(os.environ.get("YIBAO_DEMO_SEED", "20261122")))
    # SQLite: how long a writer waits for the lock, and an optional cap on the database size (a quota)
    sqlite_busy_ms: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SQLITE_BUSY_MS", "30000")))
    sqlite_max_bytes: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SQLITE_MAX_BYTES", "0")))
    log_json: bool = field(default_factory=lambda: os.environ.get("YIBAO_LOG_JSON", "0") == "1")
    # institution keys are cached this long per worker: a rotated-out or revoked secret stops working within it
    key_cache_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_KEY_CACHE_S", "30")))
