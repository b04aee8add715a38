"""Errors that are shown to callers.

Every refusal is a `YibaoError`. The national gateway turns it into ``infcode`` -1 with the
message in ``err_msg``; the REST API turns it into an HTTP 4xx JSON problem. Anything else
that escapes a handler is a bug: it is logged and answered with a generic message.
"""

from __future__ import annotations


class YibaoError(Exception):
    http_status = 400
    infcode = -1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)


class InputError(YibaoError):
    """A field is missing, mistyped or out of range."""


class NotFound(YibaoError):
    http_status = 404


class Conflict(YibaoError):
    http_status = 409


class AuthError(YibaoError):
    http_status = 401


class Busy(YibaoError):
    """The store could not take the write in time (e.g. SQLite locked); safe to retry."""

    http_status = 503


class Unavailable(YibaoError):
    """The database cannot be reached or does not take writes just now (e.g. a primary failing over to its standby);
    the transaction was not committed, or its answer is stored under the msgid: safe to retry."""

    http_status = 503


class StorageFull(YibaoError):
    """The database hit its size limit or the disk is full; the transaction was rolled back whole."""

    http_status = 507
