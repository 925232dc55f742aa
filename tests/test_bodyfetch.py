"""Fetching missing post contents from peers is bounded and paced (core/bodyfetch.py,
protocols/sync.md §7.4)."""

from __future__ import annotations

from liberation_node.core.bodies import Post
from liberation_node.core.bodyfetch import BodyFetch, BodyFetchConfig
from liberation_node.core.ops import Op, create_op

from .history import NETWORK, T0, identity

ALICE = identity(0)


def posts(n: int) -> list[Op]:
    return [create_op(ALICE, network=NETWORK, seq=i + 2, prev=bytes(32), timestamp=T0,
                      body=Post("social", f"{i}", 1, None)) for i in range(n)]


def test_sweeps_are_paced_and_each_peer_gets_a_share() -> None:
    fetch = BodyFetch(BodyFetchConfig(retry_ms=2_000, sweep_ms=500, per_peer=64, tries=3,
                                      max_tracked=1_000))
    wanted = posts(1_200)
    for op in wanted:
        fetch.want(op, T0)
    assert len(fetch) == 1_000  # the rest is not tracked
    assert fetch.timer() == 0  # due at once
    first = fetch.due(T0, [7, 8])
    assert sorted(first) == [7, 8] and all(len(refs) == 64 for refs in first.values())
    assert fetch.timer() == T0 + 500
    assert fetch.due(T0 + 499, [7, 8]) == {}  # no sweep before sweep_ms
    second = fetch.due(T0 + 500, [7, 8])
    assert sum(map(len, second.values())) == 128
    asked_first = {r.id for refs in first.values() for r in refs}
    assert not asked_first & {r.id for refs in second.values() for r in refs}
    fetch.got(wanted[0].id)
    assert len(fetch) == 999


def test_a_content_is_asked_of_another_peer_each_time_then_given_up() -> None:
    fetch = BodyFetch(BodyFetchConfig(retry_ms=2_000, sweep_ms=500, tries=3))
    [op] = posts(1)
    fetch.want(op, T0)
    asked_of = []
    now = T0
    while len(fetch):
        for conn, refs in fetch.due(now, [1, 2, 3]).items():
            assert [r.id for r in refs] == [op.id]
            asked_of.append(conn)
        now += 500
    assert len(asked_of) == 3 and len(set(asked_of)) == 3  # three peers, in turn
    assert fetch.given_up == 1 and fetch.timer() is None
    assert now - T0 >= 2 * 2_000  # a retry waits retry_ms
