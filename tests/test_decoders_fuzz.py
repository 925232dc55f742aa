"""No value a peer can encode makes a decoder raise anything but `Rejection`.

Random bytes rarely get past msgpack's own parser, so these tests build
*structured* inputs: arbitrary msgpack values (binary map keys, floats,
extension types, deep nesting, huge integers), both alone and spliced into the
fields of a valid op, record or frame. (A binary map key once crashed
decode_op; the byte-level fuzzers in test_core_ops.py never produced one.)
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import frames
from liberation_node.core.bodies import Register
from liberation_node.core.errors import Rejection
from liberation_node.core.ingested import Outcome
from liberation_node.core.ops import OP_DOMAIN, create_op, decode_op
from liberation_node.core.records import NodeLinks, create_record, decode_record
from liberation_node.core.replica import Replica

from .history import NETWORK, T0, identity

ALICE = identity(0)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=20), st.binary(max_size=40),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=8), st.binary(max_size=8)), inner,
                        max_size=5),
    ),
    max_leaves=20,
)

OP = create_op(ALICE, network=NETWORK, seq=1, prev=None, timestamp=T0, body=Register("a"))
RECORD = create_record(ALICE, network=NETWORK, version=T0, ttl_ms=60_000,
                       body=NodeLinks(((identity(1).public_key, 5),)))


def pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def splice(wire: bytes, index: int, value: Any, domain: bytes) -> bytes:
    fields = msgpack.unpackb(wire, raw=False)
    fields[index % len(fields)] = value
    body = fields[:-1]
    signature = ALICE.sign(domain + pack(body))  # valid signature over the odd value
    return pack([*body, signature])


def never_raises(fn: Any, *args: Any) -> None:
    with contextlib.suppress(Rejection):  # a clear refusal is fine; anything else fails
        fn(*args)


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_value_alone(value: Any) -> None:
    data = pack(value)
    never_raises(decode_op, data, NETWORK)
    never_raises(decode_record, data, NETWORK, T0)
    never_raises(frames.decode, data)
    assert Replica(NETWORK).ingest(data, T0).outcome is Outcome.REJECTED


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 8), values)
def test_any_value_in_an_op_field(index: int, value: Any) -> None:
    data = splice(OP.wire, index, value, OP_DOMAIN)
    never_raises(decode_op, data, NETWORK)
    Replica(NETWORK).ingest(data, T0)  # must not raise


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6), values)
def test_any_value_in_a_record_field(index: int, value: Any) -> None:
    from liberation_node.core.records import RECORD_DOMAIN

    data = splice(RECORD.wire, index, value, RECORD_DOMAIN)
    never_raises(decode_record, data, NETWORK, T0)
    Replica(NETWORK).ingest_record(data, T0)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 13), st.lists(values, max_size=6))
def test_any_fields_in_any_frame_type(code: int, fields: list[Any]) -> None:
    never_raises(frames.decode, pack([code, *fields]))
