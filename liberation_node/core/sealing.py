"""Direct messages sealed to their recipient and their author (protocols/ops.md §13).

Every node stores and relays every op, so a direct message's text travels
encrypted: only the two parties' nodes can open it. X25519 keys come from the
Ed25519 identities (libsodium's birational map), so a node id is also the key a
message is sealed to, and nothing new has to be published.

One seal, two readers. The writer picks a fresh ephemeral key and a fresh
content key from 32 random bytes it is given (the core draws no randomness:
the daemon passes os.urandom bytes, the simulator its seeded RNG). The content
key is wrapped once for the recipient and once for the author (a "slot" each),
so the author's node can read its own sent messages, also after a restore from
its seed alone. The slots do not say whose they are: the recipient is not
visible to anyone else (§13.1). The text is padded to a power of two, at least
256 bytes, so its length shows only as one of five sizes.

Every key here encrypts exactly one message (each is derived from the fresh
32 bytes), so the AEAD nonce is fixed at zero.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from .identity import PUBLIC_KEY_BYTES, Identity

DM_DOMAIN = b"liberation-node/dm/v1\x00"
SEAL_BYTES = 32  # fresh randomness per direct message, from the driver
KEY_BYTES = 32
TAG_BYTES = 16
SLOT_BYTES = KEY_BYTES + TAG_BYTES  # a content key sealed to one reader
HEAD_BYTES = PUBLIC_KEY_BYTES + 2  # the recipient, then the text's length (big-endian)
MIN_PADDED = 256
MAX_TEXT = 4096  # bodies.MAX_TEXT_BYTES; repeated to keep this module free of bodies
OVERHEAD = PUBLIC_KEY_BYTES + 2 * SLOT_BYTES + HEAD_BYTES + TAG_BYTES  # 178 bytes
# The only sizes a direct message's content can have: 434, 690, 1202, 2226, 4274 bytes.
DIRECT_SIZES = tuple(OVERHEAD + (MIN_PADDED << i) for i in range(5))
_ZERO_NONCE = bytes(24)
_encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


class SealError(ValueError):
    """A sealed content opened for us but does not hold a well-formed message."""


@dataclass(frozen=True, slots=True)
class Opened:
    to: bytes  # the recipient the author named inside
    text: str


def padded_length(n: int) -> int:
    """The padded text length for a text of `n` bytes: a power of two, at least 256."""
    if not 1 <= n <= MAX_TEXT:
        raise ValueError(f"a direct message holds 1 to {MAX_TEXT} bytes of text")
    return max(MIN_PADDED, 1 << (n - 1).bit_length())


def _kdf(data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=KEY_BYTES, person=person).digest()


def exchange_public(node_id: bytes) -> bytes | None:
    """The X25519 public key of a node id; None when the id is no valid Ed25519 key
    (an id can name any 32 bytes, ops.md §6.1, but only a key can be written to)."""
    if len(node_id) != PUBLIC_KEY_BYTES:
        return None
    try:
        key: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(node_id)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError):
        return None
    return key


def _shared(secret: bytes, public: bytes) -> bytes | None:
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(secret, public)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError):
        return None  # a low-order point gives the all-zero secret, which libsodium refuses
    return shared


def _slot_key(shared: bytes, ephemeral: bytes, reader: bytes) -> bytes:
    return _kdf(shared + ephemeral + reader, b"ln-dm-slot")


def associated_data(network: str, author: bytes) -> bytes:
    """What the text's encryption is bound to: a copy of the content in another author's
    op (or another network's) does not open."""
    return DM_DOMAIN + network.encode("ascii") + b"\x00" + author


def seal(text: str, to: bytes, author: Identity, network: str, randomness: bytes) -> bytes:
    """The content of a direct message from `author` to `to` (ops.md §13.3).

    Raises ValueError for a recipient that is not a valid key, a text out of
    bounds, or randomness that is not SEAL_BYTES long."""
    if len(randomness) != SEAL_BYTES:
        raise ValueError(f"sealing takes {SEAL_BYTES} fresh random bytes")
    recipient = exchange_public(to)
    if recipient is None:
        raise ValueError("the recipient is not a valid node id (no key to write to)")
    raw = text.encode("utf-8")
    padded = padded_length(len(raw))
    ephemeral_secret = _kdf(randomness, b"ln-dm-eph")
    ephemeral: bytes = nacl.bindings.crypto_scalarmult_base(ephemeral_secret)
    content_key = _kdf(randomness, b"ln-dm-key")
    slots = b""
    for reader in (recipient, author.exchange_public):
        shared = _shared(ephemeral_secret, reader)
        if shared is None:
            raise ValueError("cannot seal to that key")
        slots += _encrypt(content_key, ephemeral, _ZERO_NONCE,
                          _slot_key(shared, ephemeral, reader))
    plain = to + len(raw).to_bytes(2, "big") + raw + bytes(padded - len(raw))
    body: bytes = _encrypt(plain, associated_data(network, author.public_key), _ZERO_NONCE,
                           content_key)
    return ephemeral + slots + body


def open_sealed(content: bytes, reader: Identity, author: bytes, network: str
                ) -> Opened | None:
    """Open a direct message's content as `reader`: None when neither slot is ours
    (the message is for someone else); `SealError` when a slot is ours but what it
    seals is not a well-formed message (ops.md §13.4)."""
    if len(content) not in DIRECT_SIZES:
        return None
    ephemeral = content[:PUBLIC_KEY_BYTES]
    public = reader.exchange_public
    shared = _shared(reader.exchange_secret, ephemeral)
    if shared is None:
        return None
    key = _slot_key(shared, ephemeral, public)
    content_key = None
    for i in range(2):
        start = PUBLIC_KEY_BYTES + i * SLOT_BYTES
        try:
            content_key = _decrypt(content[start : start + SLOT_BYTES], ephemeral, _ZERO_NONCE,
                                   key)
            break
        except nacl.exceptions.CryptoError:
            continue
    if content_key is None:
        return None
    try:
        plain: bytes = _decrypt(content[PUBLIC_KEY_BYTES + 2 * SLOT_BYTES :],
                                associated_data(network, author), _ZERO_NONCE, content_key)
    except nacl.exceptions.CryptoError:
        raise SealError("the text does not decrypt (sealed for another author or network)") \
            from None
    return _unpad(plain, author)


def _unpad(plain: bytes, author: bytes) -> Opened:
    to, n = plain[:PUBLIC_KEY_BYTES], int.from_bytes(plain[PUBLIC_KEY_BYTES:HEAD_BYTES], "big")
    rest = plain[HEAD_BYTES:]
    if not 1 <= n <= len(rest) or padded_length(n) != len(rest) or any(rest[n:]):
        raise SealError("the padding is not the one ops.md §13.3 prescribes")
    if to == author:
        raise SealError("a direct message to its own author")
    try:
        text = rest[:n].decode("utf-8")
    except UnicodeDecodeError:
        raise SealError("the text is not UTF-8") from None
    return Opened(to, text)
