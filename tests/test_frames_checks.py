"""The frame field checks written out by hand for speed (core/frames.py: `_ref`,
`_announced`, `_with_hops`) accept exactly what the general combinators accept."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import frames
from liberation_node.core.frames import (
    MAX_HOPS,
    _announced,
    _bin,
    _list,
    _ref,
    _row,
    _uint,
    _with_hops,
)

_scalar = st.one_of(
    st.binary(min_size=0, max_size=40), st.integers(min_value=-2, max_value=2**54),
    st.sampled_from([0, 1, 31, 32, 33, 254, 255, 256, 2**53 - 1, 2**53, True, False]),
    st.text(max_size=3), st.none(), st.binary(min_size=32, max_size=32))
_value = st.one_of(_scalar, st.lists(_scalar, max_size=5).map(tuple),
                   st.lists(_scalar, max_size=5))


@settings(max_examples=600, deadline=None)
@given(_value)
def test_written_out_checks_agree_with_the_combinators(value: Any) -> None:
    assert _ref(value) == _row(_bin(32), _uint(), _bin(32))(value)
    assert _announced(value) == _row(_bin(32), _uint(), _bin(32), _uint(MAX_HOPS))(value)
    for most in (8, 8192):
        assert _with_hops(most)(value) == _list(_row(_bin(most=most), _uint(MAX_HOPS)))(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32),
                          st.integers(min_value=0, max_value=2**53 - 1),
                          st.binary(min_size=32, max_size=32),
                          st.integers(min_value=0, max_value=MAX_HOPS)), max_size=20))
def test_ihave_round_trips(rows: list[tuple[bytes, int, bytes, int]]) -> None:
    frame = frames.IHave(tuple(rows))
    assert frames.decode(frames.encode(frame)) == frame
