"""Real-person checks (实人认证) behind one interface.

Production plugs a face-verification vendor here (a face image compared with the public-security
photo, plus a liveness result). yibao ships a deterministic provider for tests and the demo:
the "face" of a person is a token derived from their ID number (`demo_face`), and liveness
passes at a score of 0.8 or more. Choose with YIBAO_REALPERSON_PROVIDER (only "deterministic"
is built in).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from yibao.core import crypto
from yibao.registry.models import Person


@dataclass(frozen=True)
class FaceResult:
    matched: bool
    live: bool
    score: float
    reason: str = ""


class RealPersonProvider(Protocol):
    def verify(self, person: Person, face: str, liveness_score: float) -> FaceResult: ...


def demo_face(certno: str) -> str:
    """What the deterministic provider accepts as this person's face (the demo app's 'camera')."""
    return "face:" + crypto.sm3_hex(f"yibao-face|{certno.upper()}".encode())[:24]


class DeterministicProvider:
    threshold = 0.8

    def verify(self, person: Person, face: str, liveness_score: float) -> FaceResult:
        if liveness_score < self.threshold:
            return FaceResult(False, False, liveness_score, f"liveness {liveness_score:.2f} is below {self.threshold}")
        if not crypto.equal(face, demo_face(person.certno)):
            return FaceResult(False, True, 0.0, "the face does not match the person's photo")
        return FaceResult(True, True, 0.99)


def provider() -> RealPersonProvider:
    name = os.environ.get("YIBAO_REALPERSON_PROVIDER", "deterministic")
    if name != "deterministic":
        raise RuntimeError(f"no real-person provider '{name}' is installed")
    return DeterministicProvider()
