"""National and gateway cryptography behind one small interface.

SM3 / HMAC-SM3 / SM4 come from pyca ``cryptography``. The two foreign gateway schemes real HIS
clients use (Alibaba CSB: HMAC-SHA1; Tencent TIF: SHA-256) are here too so that unmodified
clients can connect.
"""

from __future__ import annotations

import base64
import hmac as std_hmac
import os

from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def sm3_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def hmac_sm3(key: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(message)
    return mac.finalize()


def hmac_sm3_hex(key: bytes, message: bytes) -> str:
    return hmac_sm3(key, message).hex()


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison (signatures must not leak by timing)."""
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return std_hmac.compare_digest(a, b)


def csb_signature(secret: str, params: dict[str, str]) -> str:
    """Alibaba CSB: Base64(HMAC-SHA1(secret, 'k=v&…' over the parameters sorted by key))."""
    canonical = "&".join(f"{k}={params[k]}" for k in sorted(params))
    mac = hmac.HMAC(secret.encode(), hashes.SHA1())
    mac.update(canonical.encode())
    return base64.b64encode(mac.finalize()).decode()


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    """Tencent TIF: hex(SHA-256(timestamp + token + nonce + timestamp))."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(f"{timestamp}{token}{nonce}{timestamp}".encode())
    return digest.finalize().hex()


def sm4_ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-ECB with PKCS#7, the mode provinces use to encrypt ``output`` (interface-notes §6)."""
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def sm4_ecb_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    data = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(data) + unpadder.finalize()


def new_secret() -> str:
    """A fresh 256-bit institution secret, hex."""
    return os.urandom(32).hex()
