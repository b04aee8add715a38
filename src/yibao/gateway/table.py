"""The transaction table: infno → handler, input type, and the per-transaction REST paths."""

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


@dataclass
class TransactionSet:
    """Transactions one domain contributes; collected into the one table below."""

    items: list[Transaction] = field(default_factory=list)

    def register(self, infno: str, name: str, input_type: type, *, paths: tuple[str, ...] = (), needs_sign_in: bool = True,
                 store_answer: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.items.append(Transaction(infno, name, handler, input_type, needs_sign_in, paths, store_answer))
            return handler

        return wrap


def build_table() -> dict[str, Transaction]:
    from yibao.chronic.transactions import TRANSACTIONS as chronic
    from yibao.codes.transactions import TRANSACTIONS as codes
    from yibao.credential.transactions import TRANSACTIONS as credential
    from yibao.encounter.transactions import TRANSACTIONS as encounter
    from yibao.files.transactions import TRANSACTIONS as files
    from yibao.gateway.signin import TRANSACTIONS as signin
    from yibao.reconciliation.transactions import TRANSACTIONS as reconciliation
    from yibao.registry.transactions import TRANSACTIONS as registry

    table: dict[str, Transaction] = {}
    for group in (signin, registry, credential, codes, files, encounter, chronic, reconciliation):
        for tx in group.items:
            if tx.infno in table:
                raise RuntimeError(f"transaction {tx.infno} registered twice")
            table[tx.infno] = tx
    return table


def path_index(table: dict[str, Transaction]) -> dict[str, str]:
    return {path: tx.infno for tx in table.values() for path in tx.paths}
