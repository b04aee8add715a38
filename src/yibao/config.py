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
    # the demo regions to seed ("370100,440300"; "" both): a federation's province node seeds its own
    demo_regions: str = field(default_factory=lambda: os.environ.get("YIBAO_DEMO_REGIONS", ""))
    demo_seed: int = field(default_factory=lambda: int(os.environ.get("YIBAO_DEMO_SEED", "20261122")))
    # SQLite: how long a writer waits for the lock, and an optional cap on the database size (a quota)
    sqlite_busy_ms: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SQLITE_BUSY_MS", "30000")))
    sqlite_max_bytes: int = field(default_factory=lambda: int(os.environ.get("YIBAO_SQLITE_MAX_BYTES", "0")))
    log_json: bool = field(default_factory=lambda: os.environ.get("YIBAO_LOG_JSON", "0") == "1")
    # institution keys are cached this long per worker: a rotated-out or revoked secret stops working within it
    key_cache_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_KEY_CACHE_S", "30")))
    # real-person (face) provider: an HTTPS endpoint and the HMAC-SM3 key both sides sign with; none configured means a
    # production database refuses activation and password reset (a demo database falls back to the deterministic checker)
    face_provider_url: str = field(default_factory=lambda: os.environ.get("YIBAO_FACE_PROVIDER", ""))
    face_provider_key: str = field(default_factory=lambda: os.environ.get("YIBAO_FACE_PROVIDER_KEY", ""), repr=False)
    face_min_score: float = field(default_factory=lambda: float(os.environ.get("YIBAO_FACE_MIN_SCORE", "0.8")))
    face_timeout_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_FACE_TIMEOUT_S", "5")))
    # mobile payment (医保移动支付, docs/mobile-payment.md): the payment provider's base URL, our merchant number there, the
    # HMAC-SM3 key both sides sign with, the URL it posts callbacks to (this platform's /api/v1/payment/callback) and how
    # long a payment may take before it is rolled back; none configured: a production database refuses mobile payment
    pay_provider_url: str = field(default_factory=lambda: os.environ.get("YIBAO_PAY_PROVIDER", ""))
    pay_merchant_id: str = field(default_factory=lambda: os.environ.get("YIBAO_PAY_MERCHANT", ""))
    pay_key: str = field(default_factory=lambda: os.environ.get("YIBAO_PAY_KEY", ""), repr=False)
    pay_notify_url: str = field(default_factory=lambda: os.environ.get("YIBAO_PAY_NOTIFY_URL", ""))
    pay_timeout_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_PAY_TIMEOUT_S", "10")))
    # the bank's disbursement service cash benefits (maternity allowances) are paid through, and the HMAC-SM3 key both
    # sides sign with; none configured: allowances are scheduled but not paid (yibao maternity run says so)
    payout_url: str = field(default_factory=lambda: os.environ.get("YIBAO_PAYOUT_URL", ""))
    payout_key: str = field(default_factory=lambda: os.environ.get("YIBAO_PAYOUT_KEY", ""), repr=False)
    payout_timeout_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_PAYOUT_TIMEOUT_S", "10")))
    # scrypt cost for new password hashes (a power of two); older hashes keep theirs and are re-hashed at the next sign-in
    password_scrypt_n: int = field(default_factory=lambda: int(os.environ.get("YIBAO_PASSWORD_SCRYPT_N", str(2**14))))
    # people's API rate limits: attempts per fixed window, per account (the ID number typed, or the signed-in person) and
    # per client IP, counted in rate_counter so every worker shares them; over the limit answers 429 with Retry-After
    rate_window_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_WINDOW_S", "900")))
    rate_sign_in_account: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_SIGN_IN_ACCOUNT", "10")))
    rate_sign_in_ip: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_SIGN_IN_IP", "300")))
    rate_activation_account: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_ACTIVATION_ACCOUNT", "10")))
    rate_activation_ip: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_ACTIVATION_IP", "100")))
    rate_reset_account: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_RESET_ACCOUNT", "5")))
    rate_reset_ip: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_RESET_IP", "30")))
    rate_bind_account: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_BIND_ACCOUNT", "10")))
    rate_bind_ip: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_BIND_IP", "100")))
    # a fee line may be dated this much before its visit began (clocks of HIS and platform differ), never earlier
    # how far back a visit's begin time (2201, 2401, pharmacy) may be dated: an admission registered late, not a year-old visit
    visit_backdate_h: int = field(default_factory=lambda: int(os.environ.get("YIBAO_VISIT_BACKDATE_H", "168")))
    fee_time_tolerance_s: int = field(default_factory=lambda: int(os.environ.get("YIBAO_FEE_TIME_TOLERANCE_S", "600")))
    # An e-prescription's validity in days (处方流转: valid the day it is written, at most 3 days): the default when the
    # hospital sends no valid_days and the most it may ask for.
    rx_valid_days: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RX_VALID_DAYS", "3")))
    # -- federation (docs/federation.md): "" a node on its own; "node" a province's node; "hub" the national hub
    federation_role: str = field(default_factory=lambda: os.environ.get("YIBAO_FEDERATION_ROLE", ""))
    # a node: the hub's base URL and the key (hex, 32 bytes) it shares with the hub
    federation_hub: str = field(default_factory=lambda: os.environ.get("YIBAO_FEDERATION_HUB", ""))
    federation_key: str = field(default_factory=lambda: os.environ.get("YIBAO_FEDERATION_KEY", ""), repr=False)
    # the hub: "370100=http://127.0.0.1:8101#<key hex>,440300=…": each province's node and the key shared with it
    federation_nodes: str = field(default_factory=lambda: os.environ.get("YIBAO_FEDERATION_NODES", ""), repr=False)
    # how long a call between nodes may take (the counter's 2207 waits for it)
    federation_timeout_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_FEDERATION_TIMEOUT_S", "5")))
    # a home's reservation the place of care has not confirmed after this long is asked about (confirmed or released)
    federation_reservation_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_FEDERATION_RESERVATION_S", "120")))
    federation_sweep_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_FEDERATION_SWEEP_S", "10")))
    # NATS (JetStream) for events between nodes; "" publishes nothing (the outbox keeps them)
    nats_url: str = field(default_factory=lambda: os.environ.get("YIBAO_NATS_URL", ""))
    # -- e-bills (docs/bills.md): the address people reach this server at (the bill's QR code leads to its verification
    # page there), how often the background issuer looks for new settlements (0: never; bills are then issued when asked
    # for), and the public verification's limit per client IP and window
    public_base_url: str = field(default_factory=lambda: os.environ.get("YIBAO_PUBLIC_BASE_URL", "http://127.0.0.1:8000"))
    bill_issue_interval_s: float = field(default_factory=lambda: float(os.environ.get("YIBAO_BILL_ISSUE_INTERVAL_S", "1")))
    rate_bill_verify_ip: int = field(default_factory=lambda: int(os.environ.get("YIBAO_RATE_BILL_VERIFY_IP", "600")))
