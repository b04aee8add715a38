"""Metrics and logging set-up (prometheus-client, structlog)."""

from __future__ import annotations

import logging

import structlog
from prometheus_client import Counter, Histogram

GATEWAY_REQUESTS = Counter("yibao_gateway_requests_total", "National-interface calls", ["infno", "infcode"])
GATEWAY_LATENCY = Histogram(
    "yibao_gateway_seconds", "Server time per national-interface call", ["infno"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def configure_logging(json: bool = False, level: int = logging.INFO) -> None:
    processors = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                  structlog.processors.format_exc_info]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(processors=[*processors, renderer], wrapper_class=structlog.make_filtering_bound_logger(level))
