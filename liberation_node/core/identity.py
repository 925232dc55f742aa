"""Identities: Ed25519 key pairs and the text form of a node id (protocols/ops.md §2).

A node id *is* the 32-byte Ed25519 public key. People copy ids between
terminals, chats and config files, so the text form is lowercase base32 (no
padding, no case or 0/O confusion when read aloud), prefixed ``ln`` and carrying
a 2-byte BLAKE2b checksum so that a mistyped id is refused instead of silently
naming somebody else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
TEXT_PREFIX = "ln"
_CHECKSUM_BYTES = 2


def _checksum(public_key: bytes) -> bytes:
    return hashlib.blake2b(public_key, digest_size=_CHECKSUM_BYTES, person=b"ln-id").digest()


def id_to_text(public_key: bytes) -> str:
    """The copyable text form of a node id: ``ln`` + base32(key || checksum)."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError("a node id is 32 bytes")
    raw = public_key + _checksum(public_key)
    return TEXT_PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def id_from_text(text: str) -> bytes:
    """Parse a text id; raises ValueError with a clear message when it is not one."""
    text = text.strip()
    if not text.isascii():
        # Case folding would read some non-ASCII letters as base32 (U+017F, long s,
        # upper-cases to 'S'): a text id is ASCII only (protocols/ops.md §2.2.1).
        raise ValueError("a node id is ASCII only (a look-alike character?)")
    if not text.startswith(TEXT_PREFIX):
        raise ValueError(f"a node id starts with {TEXT_PREFIX!r}")
    body = text[len(TEXT_PREFIX) :].upper()
    body += "=" * (-len(body) % 8)
    try:
        raw = base64.b32decode(body)
    except (ValueError, TypeError) as exc:
        raise ValueError("a node id is base32 after its prefix") from exc
    if len(raw) != PUBLIC_KEY_BYTES + _CHECKSUM_BYTES:
        raise ValueError("a node id has the wrong length")
    key, check = raw[:PUBLIC_KEY_BYTES], raw[PUBLIC_KEY_BYTES:]
    if _checksum(key) != check:
        raise ValueError("node id checksum mismatch (mistyped?)")
    if id_to_text(key) != TEXT_PREFIX + text[len(TEXT_PREFIX) :].rstrip("=").lower():
        # The last character carries 3 spare bits; only the spelling with them
        # zero is an id, so every id has exactly one text form (ignoring case).
        raise ValueError("node id is not in canonical form (mistyped last character?)")
    return key


def short_id(public_key: bytes) -> str:
    """A short display form (not unique, never parsed): the first 8 characters after ``ln``."""
    return id_to_text(public_key)[: len(TEXT_PREFIX) + 8]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification; False (never an exception) for any bad input."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """An Ed25519 key pair. Create with `from_seed`; the seed is the secret to keep."""

    seed: bytes
    public_key: bytes
    _secret_key: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        if len(seed) != SEED_BYTES:
            raise ValueError("an identity seed is 32 bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(seed=bytes(seed), public_key=public, _secret_key=secret)

    @property
    def text(self) -> str:
        return id_to_text(self.public_key)

    @property
    def short(self) -> str:
        return short_id(self.public_key)

    @functools.cached_property
    def exchange_public(self) -> bytes:
        """The X25519 public key of this identity (protocols/ops.md §13.2)."""
        key: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(self.public_key)
        return key

    @functools.cached_property
    def exchange_secret(self) -> bytes:
        """The X25519 secret key matching `exchange_public`: it opens direct messages."""
        key: bytes = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(self._secret_key)
        return key

    def sign(self, message: bytes) -> bytes:
        signed: bytes = nacl.bindings.crypto_sign(message, self._secret_key)
        return signed[:SIGNATURE_BYTES]

    def __repr__(self) -> str:  # never print the seed
        return f"Identity({self.text})"
