"""The fast forms of two checks every op and record passes give what their plain
definitions give (protocols/ops.md §3 map key order, §4 network names)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from liberation_node.core import codec
from liberation_node.core.ops import MAX_NETWORK_BYTES, valid_network

ALLOWED = "abcdefghijklmnopqrstuvwxyz0123456789-._"


def keys_sorted_by_utf8(value: dict[Any, Any]) -> bool:
    if not all(type(k) is str for k in value):
        return False
    keys = [k.encode("utf-8") for k in value]
    return all(a < b for a, b in itertools.pairwise(keys))


def plain_valid_network(name: Any) -> bool:
    return (type(name) is str and 1 <= len(name) <= MAX_NETWORK_BYTES
            and all(c in ALLOWED for c in name))


keys = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=6),
                 st.binary(max_size=3), st.integers(-2, 2))


@settings(max_examples=1000, deadline=None)
@given(st.lists(keys, max_size=6, unique=True), st.booleans())
def test_key_order_is_the_utf8_bytewise_order(items: list[Any], sort: bool) -> None:
    if sort and all(type(k) is str for k in items):
        items = sorted(items, key=lambda k: k.encode("utf-8"))
    value = dict.fromkeys(items, 0)
    assert codec.check_map_keys_sorted(value) == keys_sorted_by_utf8(value)


def test_key_order_across_utf8_lengths() -> None:
    ordered = ["a", "z", "\x7f", "\x80", "é", "\u07ff", "\u0800", "\uffff", "\U00010000"]
    assert codec.check_map_keys_sorted(dict.fromkeys(ordered, 0))
    assert not codec.check_map_keys_sorted(dict.fromkeys(reversed(ordered), 0))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(ALLOWED + "A-Z é\x00/", max_size=70), st.text(max_size=5),
                 st.binary(max_size=5), st.none()))
def test_network_names_as_defined(name: Any) -> None:
    assert valid_network(name) == plain_valid_network(name)


cells = st.one_of(st.binary(max_size=12), st.integers(-1, 300), st.text(max_size=2), st.none(),
                  st.booleans())
rows = st.one_of(st.tuples(cells, cells), st.tuples(cells), st.tuples(cells, cells, cells),
                 st.binary(max_size=3))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.lists(rows, max_size=5).map(tuple), st.lists(rows, max_size=5), cells))
def test_the_rows_of_ops_and_records_frames_are_checked_as_composed(value: Any) -> None:
    from liberation_node.core import frames

    composed = frames._list(frames._row(frames._bin(most=10), frames._uint(frames.MAX_HOPS)))
    assert frames._with_hops(10)(value) == composed(value)
