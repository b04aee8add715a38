"""Metrics and logging set-up (prometheus-client, structlog)."""

from __future__ import annotations

import logging
from typing import Any, TextIO

import structlog
from prometheus_client import Counter, Histogram

GATEWAY_REQUESTS = Counter("yibao_gateway_requests_total", "National-interface calls", ["infno", "infcode"])
# Refusals before the caller is known (unsigned, malformed headers, stale, unknown key, bad signature): a stranger
# must not make the server write rows, so these are only counted.
GATEWAY_AUTH_REFUSED = Counter("yibao_gateway_auth_refused_total", "National-interface calls refused by authentication", ["reason"])
# Authentication failures of known keys beyond the audit trail's rate limit (one row per key per second)
GATEWAY_AUDIT_SUPPRESSED = Counter("yibao_gateway_audit_suppressed_total", "Gateway failures not written to the audit trail (rate limit)")
# Server-side time of one national-interface call, by transaction: from GatewayService.call's entry (before the
# signature check) to the encoded answer, so it includes waiting for the writers' lock and the commit, and excludes
# the HTTP stack around it (uvicorn, Litestar: ~0.3 ms a call). bench/national_day.py scrapes it before and after a run
# and reports it beside the client-side latency; the buckets are fine enough between 0.25 and 30 ms (a call's usual
# range) for a bucket-estimated p50/p95/p99 to be read off within a bucket's width.
GATEWAY_LATENCY_BUCKETS = (0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                           0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GATEWAY_LATENCY = Histogram(
    "yibao_gateway_seconds", "Server time per national-interface call (inside the gateway service, excluding the HTTP stack)",
    ["infno"], buckets=GATEWAY_LATENCY_BUCKETS,
)


def configure_logging(json: bool = False, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log lines to ``stream`` (stdout). ``log.exception`` carries the traceback in both renderings: format_exc_info
    turns it into the ``exception`` field (one JSON line), which the console renderer prints below the event."""
    processors: list[Any] = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                  structlog.processors.format_exc_info]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(processors=[*processors, renderer], wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=structlog.PrintLoggerFactory(stream))


def ensure_logging(json: bool = False) -> None:
    """Configure logging unless the process already did (`yibao serve`). Worker processes that uvicorn spawns start
    unconfigured, and structlog's default renders tracebacks with every frame's local variables: request bodies with
    ID numbers and names would reach the log."""
    if not structlog.is_configured():
        configure_logging(json=json)
