"""The contract between the gateway and the domains: what a transaction handler receives and how a domain
registers its transactions.

A leaf module (it imports only core, config and the envelope): every domain imports it, so it may import no
domain and nothing else of the gateway. The table itself is composed in `yibao.app`, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from yibao.config import Settings
from yibao.gateway.envelope import Answer, Envelope


@dataclass
class Context:
    """What a handler may use: the transaction's session, the envelope and who called."""

    session: Session
    envelope: Envelope
    fixmedins_code: str
    settings: Settings
    received: Any
    sign_no: str | None = None
    # what a read-only transaction must still write (a catalogue file it built): run after its read, in the short write
    # transaction that keeps the call's nonce and answer (in the call's own transaction for the others)
    writes: list[Callable[[Session], Any]] = field(default_factory=list)
    # insured region → where that person's policy, totals and accounts are settled (yibao.encounter.service.Home): this
    # node, or on a federation another province's node; composed by yibao.app (None: this node for everyone)
    home_of: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class Transaction:
    infno: str
    name: str
    handler: Callable[[Context, Any], Answer | dict[str, Any]]
    input_type: type
    needs_sign_in: bool = True
    paths: tuple[str, ...] = ()
    # Answers too large or binary to keep (9102 files) are recomputed on retry instead.
    store_answer: bool = True
    # Reads only: run in a worker thread on a read-only connection, never holding the writers' lock (gateway/service.py)
    reads_only: bool = False


@dataclass
class TransactionSet:
    """Transactions one domain contributes; collected into the one table below."""

    items: list[Transaction] = field(default_factory=list)

    def register(self, infno: str, name: str, input_type: type, *, paths: tuple[str, ...] = (), needs_sign_in: bool = True,
                 store_answer: bool = True, reads_only: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.items.append(Transaction(infno, name, handler, input_type, needs_sign_in, paths, store_answer, reads_only))
            return handler

        return wrap


def path_index(table: dict[str, Transaction]) -> dict[str, str]:
    return {path: tx.infno for tx in table.values() for path in tx.paths}
