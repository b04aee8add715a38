"""Secrets at rest: SM4-GCM under one master key.

Institution and channel secrets and the QR sealing keys are stored encrypted. The master key
(16 bytes, SM4) comes from ``YIBAO_MASTER_KEY`` (32 hex digits) or from a key file
(``YIBAO_MASTER_KEY_FILE``, default ``<YIBAO_HOME>/master.key``) that is created 0600 with a
random key on first start. The database alone, a backup of it or a copy of its file, reveals no
secret without the key.

Columns declare ``EncryptedText`` / ``EncryptedBytes`` with a purpose (the column's name), used
as associated data, so a ciphertext moved to another column does not open.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import LargeBinary, Text
from sqlalchemy.types import TypeDecorator

TEXT_PREFIX = "sm4gcm1:"
BYTES_PREFIX = b"\x01"
KEY_BYTES = 16


class VaultError(Exception):
    """The master key is missing, malformed, or does not open what is stored."""


def home() -> Path:
    return Path(os.environ.get("YIBAO_HOME", "var")).resolve()


def key_file_path() -> Path:
    configured = os.environ.get("YIBAO_MASTER_KEY_FILE")
    return Path(configured).resolve() if configured else home() / "master.key"


def _parse(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise VaultError(f"{where} is not hexadecimal: it must be {KEY_BYTES * 2} hex digits") from None
    if len(key) != KEY_BYTES:
        raise VaultError(f"{where} must be {KEY_BYTES * 2} hex digits (a {KEY_BYTES * 8}-bit SM4 key), not {len(key) * 2}")
    return key


def load_master_key(*, create: bool = True) -> bytes:
    """The master key from the environment or the key file, creating the file (0600) if allowed."""
    if os.environ.get("YIBAO_MASTER_KEY"):
        return _parse(os.environ["YIBAO_MASTER_KEY"], "YIBAO_MASTER_KEY")
    path = key_file_path()
    if path.exists():
        return _parse(path.read_text(), str(path))
    if not create:
        raise VaultError(f"no master key: set YIBAO_MASTER_KEY or create {path} (yibao serve creates it on first start)")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)
    # O_EXCL: two workers starting at once must not each write a different key
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _parse(path.read_text(), str(path))
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")
    return key


class Vault:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError("the master key must be 16 bytes")
        self._key = key

    def seal(self, plaintext: bytes, purpose: str) -> bytes:
        iv = os.urandom(12)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(iv)).encryptor()
        encryptor.authenticate_additional_data(purpose.encode())
        body = encryptor.update(plaintext) + encryptor.finalize()
        return iv + body + encryptor.tag

    def open(self, sealed: bytes, purpose: str) -> bytes:
        if len(sealed) < 28:
            raise VaultError(f"a stored {purpose} is not a sealed value")
        iv, body, tag = sealed[:12], sealed[12:-16], sealed[-16:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(iv, tag)).decryptor()
        decryptor.authenticate_additional_data(purpose.encode())
        try:
            return decryptor.update(body) + decryptor.finalize()
        except InvalidTag:
            raise VaultError(f"the master key does not open the stored {purpose}: wrong YIBAO_MASTER_KEY or key file") from None

    def seal_text(self, value: str, purpose: str) -> str:
        return TEXT_PREFIX + base64.b64encode(self.seal(value.encode(), purpose)).decode()

    def open_text(self, stored: str, purpose: str) -> str:
        if not stored.startswith(TEXT_PREFIX):
            raise VaultError(f"a stored {purpose} is not encrypted (run `yibao db upgrade`)")
        return self.open(base64.b64decode(stored[len(TEXT_PREFIX):]), purpose).decode()


_lock = threading.Lock()
_current: Vault | None = None


def install(key: bytes) -> Vault:
    """Make ``key`` the process's master key (a process serves one platform)."""
    global _current
    with _lock:
        _current = Vault(key)
        return _current


def current() -> Vault:
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Vault(load_master_key(create=True))
    return _current


class EncryptedText(TypeDecorator[str]):
    """A text column stored as SM4-GCM ciphertext (base64 with a version prefix)."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else current().seal_text(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else current().open_text(value, self.purpose)


class EncryptedBytes(TypeDecorator[bytes]):
    """A binary column stored as a version byte + SM4-GCM ciphertext."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: bytes | None, dialect: object) -> bytes | None:
        return None if value is None else BYTES_PREFIX + current().seal(bytes(value), self.purpose)

    def process_result_value(self, value: bytes | None, dialect: object) -> bytes | None:
        if value is None:
            return None
        value = bytes(value)
        if not value.startswith(BYTES_PREFIX):
            raise VaultError(f"a stored {self.purpose} is not encrypted (run `yibao db upgrade`)")
        return current().open(value[1:], self.purpose)
