"""Direct messages sealed to their recipient and author (core/sealing.py, protocols/ops.md §13)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core.identity import Identity
from liberation_node.core.sealing import (
    DIRECT_SIZES,
    OVERHEAD,
    Opened,
    SealError,
    associated_data,
    exchange_public,
    open_sealed,
    padded_length,
    seal,
)

NET = "test"
ALICE, BOB, CAROL = (Identity.from_seed(bytes([n]) * 32) for n in (1, 2, 3))
texts = st.text(min_size=1, max_size=1400).filter(lambda t: len(t.encode()) <= 4096)


@settings(max_examples=60, deadline=None)
@given(texts, st.binary(min_size=32, max_size=32))
def test_the_recipient_and_the_author_read_it_and_nobody_else(text: str, r: bytes) -> None:
    content = seal(text, BOB.public_key, ALICE, NET, r)
    assert len(content) == OVERHEAD + padded_length(len(text.encode())) and \
        len(content) in DIRECT_SIZES
    for reader in (BOB, ALICE):
        assert open_sealed(content, reader, ALICE.public_key, NET) == Opened(BOB.public_key,
                                                                             text)
    assert open_sealed(content, CAROL, ALICE.public_key, NET) is None
    if len(text.encode()) >= 8:  # (a byte or two can turn up in any random bytes)
        assert text.encode() not in content  # nothing of the text in the clear


def test_the_length_shows_only_as_one_of_five_sizes() -> None:
    sizes = {len(seal("x" * n, BOB.public_key, ALICE, NET, bytes(32))) for n in range(1, 257)}
    assert sizes == {434}
    assert [padded_length(n) for n in (1, 256, 257, 1024, 1025, 4096)] == [
        256, 256, 512, 1024, 2048, 4096]
    with pytest.raises(ValueError):
        padded_length(4097)


def test_fresh_randomness_makes_every_seal_different() -> None:
    one = seal("same", BOB.public_key, ALICE, NET, bytes([1]) * 32)
    two = seal("same", BOB.public_key, ALICE, NET, bytes([2]) * 32)
    assert one != two and one[:32] != two[:32]  # another ephemeral key each time
    assert seal("same", BOB.public_key, ALICE, NET, bytes([1]) * 32) == one  # no hidden RNG


def test_a_copy_in_another_authors_op_or_network_does_not_open() -> None:
    content = seal("mine", BOB.public_key, ALICE, NET, bytes(32))
    with pytest.raises(SealError):  # the slot opens, the text is bound to its author
        open_sealed(content, BOB, CAROL.public_key, NET)
    with pytest.raises(SealError):
        open_sealed(content, BOB, ALICE.public_key, "other")
    assert associated_data(NET, ALICE.public_key).startswith(b"liberation-node/dm/v1\x00")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 433), st.integers(0, 7))
def test_any_flipped_bit_is_caught(at: int, bit: int) -> None:
    content = bytearray(seal("hello", BOB.public_key, ALICE, NET, bytes(32)))
    content[at] ^= 1 << bit
    try:
        opened = open_sealed(bytes(content), BOB, ALICE.public_key, NET)
    except SealError:
        return
    # Never a wrong text: a damaged key or slot is not for us, unless the damage is in
    # the other reader's slot (bytes 80-127, the author's), which bob does not need.
    assert opened is None or (80 <= at < 128 and opened.text == "hello")


def test_sizes_other_than_the_five_are_not_for_anyone() -> None:
    content = seal("hello", BOB.public_key, ALICE, NET, bytes(32))
    assert open_sealed(content + b"\x00", BOB, ALICE.public_key, NET) is None
    assert open_sealed(content[:-1], BOB, ALICE.public_key, NET) is None


def test_an_id_that_is_no_key_cannot_be_written_to() -> None:
    no_key = bytes([0xFF]) * 32  # not a point of the curve
    assert exchange_public(no_key) is None
    with pytest.raises(ValueError, match="not a valid node id"):
        seal("hi", no_key, ALICE, NET, bytes(32))
    with pytest.raises(ValueError, match="32 fresh random bytes"):
        seal("hi", BOB.public_key, ALICE, NET, bytes(16))
    assert exchange_public(BOB.public_key) == BOB.exchange_public


def test_a_low_order_ephemeral_key_is_refused_not_a_crash() -> None:
    content = bytearray(seal("hello", BOB.public_key, ALICE, NET, bytes(32)))
    content[:32] = bytes(32)  # the all-zero point: X25519 gives the all-zero secret
    assert open_sealed(bytes(content), BOB, ALICE.public_key, NET) is None
