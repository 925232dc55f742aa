"""Writing to our own feed: a new op signed at the head of it, refused before signing
when it would be void (protocols/ops.md §5: feeds; §6: kinds and the ledger rules;
§13.2: direct messages need a valid key; §14: nothing dated before the genesis).

A mixin of `Replica` (replica.py), which owns every attribute named below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bodies import Body, Claim, Post, Register, Transfer
from .errors import LocalError
from .ingested import Ingested, Outcome
from .ledger import claim_window
from .ops import MAX_DEPS, Dep, create_op
from .sealing import exchange_public

if TYPE_CHECKING:
    from .identity import Identity
    from .ledger import Ledger
    from .ops import Op
    from .replica import Feed


class Authoring:
    """Own ops appended, after the checks that would make them void."""

    # Owned and set by Replica (replica.py).
    network: str
    genesis: int
    feeds: dict[bytes, Feed]

    if TYPE_CHECKING:  # the rest of Replica, which this calls
        @property
        def ledger(self) -> Ledger: ...
        def add(self, op: Op, now: int | None = None) -> Ingested: ...

    def append(self, identity: Identity, body: Body, now: int,
               seal: bytes | None = None) -> Ingested:
        """Write a new op to our own feed. Refuses (LocalError) ops that would be void.

        The new op is `result.applied[0]`; any ops it released follow it there,
        and the caller persists them all (a restored backup can have waiters).
        A direct post is sealed with `seal`, fresh random bytes (sealing.SEAL_BYTES)
        that the caller draws: the core draws no randomness.
        """
        me = identity.public_key
        feed = self.feeds.get(me)
        if feed is not None and feed.fork_seq is not None:
            raise LocalError("this identity has equivocated; its feed is closed")
        self._precheck(me, body, now)
        head = feed.ops[-1] if feed and feed.ops else None
        if max(now, head.timestamp if head else 0) < self.genesis:
            raise LocalError("this node's clock reads a time before the network's genesis "
                             "(ops.md §14): set the clock right")
        unacked = self.ledger.unacknowledged_payers(me)
        deps = tuple(Dep(payer, seq, self.feeds[payer].ops[seq - 1].id)
                     for payer, seq in sorted(unacked.items())[:MAX_DEPS])
        try:
            op = create_op(identity, network=self.network, seq=(head.seq + 1) if head else 1,
                           prev=head.id if head else None, deps=deps,
                           timestamp=max(now, head.timestamp if head else 0), body=body,
                           genesis=self.genesis, seal=seal)
        except ValueError as exc:
            raise LocalError(str(exc)) from None
        result = self.add(op, now)
        if result.outcome is not Outcome.APPLIED:  # a bug of ours, not the user's
            raise LocalError(f"own op not applied: {result.outcome} {result.rejection}")
        return result

    def _precheck(self, me: bytes, body: Body, now: int) -> None:
        if isinstance(body, Transfer | Post) and body.to == me:
            # ops.md §6: a body naming its own author is invalid; say so before signing.
            raise LocalError("you cannot pay or message yourself")
        if isinstance(body, Post) and body.to is not None and exchange_public(body.to) is None:
            raise LocalError("that node id is not a valid key: no message can be sealed "
                             "to it (ops.md §13.2)")
        acct = self.ledger.accounts.get(me)
        registered = acct is not None and acct.registered_at is not None
        if isinstance(body, Register) and registered:
            raise LocalError("already registered")
        if isinstance(body, Claim | Transfer) and not registered:
            raise LocalError("register first (human.register)")
        if isinstance(body, Claim):
            assert acct is not None and acct.registered_at is not None
            if body.week in acct.claimed_weeks:
                raise LocalError(f"week {body.week} already claimed")
            first, last = claim_window(acct.registered_at, now)
            if not first <= body.week <= last:
                raise LocalError(f"week {body.week} is not claimable now")
        if isinstance(body, Transfer):
            assert acct is not None
            have = acct.spendable + self.ledger.acknowledgeable(me)
            if body.amount > have:
                raise LocalError(f"insufficient balance: {have} cents available")
