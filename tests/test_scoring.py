"""The scores' table (core/scoring.py, protocols/sync.md §4.7): bounded, bans kept, and a
penalty costs the same however full the table is."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from liberation_node.core.scoring import Penalty, Scores, ScoringConfig


class _CountingTable(OrderedDict[str, Any]):
    """The table, counting the entries anything walks over."""

    visited = 0

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            self.visited += 1
            yield key

    def items(self) -> Any:
        table = self

        class Walk:
            def __iter__(self) -> Iterator[tuple[str, Any]]:
                for key in OrderedDict.__iter__(table):
                    table.visited += 1
                    yield key, OrderedDict.__getitem__(table, key)

        return Walk()


def test_the_table_keeps_the_most_recently_penalised_keys() -> None:
    scores = Scores(ScoringConfig(max_keys=100))
    for i in range(250):
        scores.penalize(f"k{i}", Penalty.OVER_BUDGET, now=i)
    assert scores.score("k249", 250) < 0 and scores.score("k150", 250) < 0
    assert scores.score("k149", 250) == 0.0 and scores.score("k0", 250) == 0.0


def test_a_banned_key_stays_however_full_the_table() -> None:
    scores = Scores(ScoringConfig(max_keys=100, ban_ms=10**9))
    assert scores.penalize("liar", Penalty.MISBEHAVING, 0) is None
    assert scores.penalize("liar", Penalty.MISBEHAVING, 0) is not None
    for i in range(500):
        scores.penalize(f"k{i}", Penalty.OVER_BUDGET, now=1 + i)
    assert scores.banned("liar", 600)
    assert scores.score("k499", 600) < 0 and scores.score("k0", 600) == 0.0


def test_a_penalty_on_a_full_table_does_not_walk_the_table() -> None:
    """Issue 9 (found by the frame fuzzer): once the table was full, every penalty
    copied and walked all 10,000 entries to drop one: fresh identities, one bad frame
    each, made each penalty cost as much as the table, and a table of bans too."""
    scores = Scores(ScoringConfig(max_keys=1000, ban_ms=10**9))
    for i in range(300):  # bans in force among the oldest entries
        scores.penalize(f"banned{i}", Penalty.MISBEHAVING, 0)
        scores.penalize(f"banned{i}", Penalty.MISBEHAVING, 0)
    for i in range(700):
        scores.penalize(f"k{i}", Penalty.PROTOCOL_ERROR, 1)
    scores._entries = table = _CountingTable(scores._entries)
    for i in range(2000):
        scores.penalize(f"new{i}", Penalty.PROTOCOL_ERROR, 2)
    assert table.visited <= 2000 * 20, f"{table.visited / 2000:.0f} entries per penalty"
    assert all(scores.banned(f"banned{i}", 3) for i in range(300))
    assert len(table) <= 1000 + 20
