"""The resource ledger: a deterministic fold over feed ops (protocols/ops.md §6.2).

Every effect is decided from the op's own causal past, so it never changes once
decided (the one exception, an equivocating author, triggers a full re-fold):

- the author's own feed prefix (register, claims, outgoing transfers), and
- the credits it has *acknowledged*: a transfer B->A counts towards A's
  spendable balance once one of A's ops names B's feed at or past that
  transfer in `deps`. Until then it is shown as incoming, not spendable.

Restricting credits to acknowledged ones (instead of the full transitive causal
past) keeps the check O(deps) per op with no vector clocks, and still means two
replicas with the same ops compute the same balances, whatever the arrival order.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from .bodies import Claim, Register, Transfer
from .errors import Void
from .ops import Op

CENT = 1
DOLLAR = 100 * CENT
POOL_TOTAL_CENTS = 19_000_000_000_000 * DOLLAR  # seed: the $19 trillion pool
WEEKLY_FLOW_CENTS = 800 * DOLLAR  # seed: humans.weekly_flow default
HOUSING_CREDIT_CENTS = 104_000 * DOLLAR  # seed: humans.housing_credit default
INVESTMENT_POOL_CENTS = 104_000 * DOLLAR  # seed: humans.investment_pool default
REGISTER_GRANT_CENTS = HOUSING_CREDIT_CENTS + INVESTMENT_POOL_CENTS
WEEK_MS = 7 * 24 * 3600 * 1000
# A claim reaches back at most this far before its own timestamp (ops.md §6.2.7):
# a late claim of a week or four is fine, a back-dated identity claiming years is not.
CLAIM_ARREARS_MS = 4 * WEEK_MS


def iso_week(timestamp_ms: int) -> int:
    """The ISO 8601 week of a UTC timestamp, as ``yyyyww`` (2026-11-25 -> 202648)."""
    day = datetime.datetime.fromtimestamp(timestamp_ms // 1000, tz=datetime.UTC).date()
    year, week, _ = day.isocalendar()
    return year * 100 + week


def claim_window(registered_at: int, claimed_at: int) -> tuple[int, int]:
    """The weeks a claim dated `claimed_at` may name, as (first, last) ``yyyyww``
    (ops.md §6.2.3, §6.2.7): from the register's week, but no further back than
    `CLAIM_ARREARS_MS` before the claim, up to the claim's own week."""
    first = max(iso_week(registered_at), iso_week(max(0, claimed_at - CLAIM_ARREARS_MS)))
    return first, iso_week(claimed_at)


@dataclass
class Account:
    """One identity's ledger state, folded from its feed and acknowledged credits."""

    registered_at: int | None = None  # timestamp of the register op that counts
    name: str = ""
    claimed: int = 0
    claimed_weeks: set[int] = field(default_factory=set)
    last_claim_at: int | None = None
    spent: int = 0
    acked_credit: int = 0
    ack: dict[bytes, int] = field(default_factory=dict)  # payer -> highest seq acknowledged

    @property
    def spendable(self) -> int:
        return self.claimed + self.acked_credit - self.spent


@dataclass(frozen=True, slots=True)
class Effect:
    """What one op did to the ledger: nothing (`void` set) or its listed amount."""

    void: Void | None
    amount: int = 0


APPLIED = Effect(None)


class Ledger:
    """Incremental ledger fold. `apply` must see ops in a causal (topological) order."""

    def __init__(self) -> None:
        self.accounts: dict[bytes, Account] = {}
        self.effects: dict[bytes, Effect] = {}  # op id -> effect, for ledger kinds
        # payee -> payer -> sorted [(seq, amount)] of valid transfers, for acknowledgement.
        self._credits: dict[bytes, dict[bytes, list[tuple[int, int]]]] = {}
        self.granted = 0  # register grants handed out, cents
        self.claimed = 0  # weekly flows handed out, cents
        self.transferred = 0  # valid transfers, cents
        # author -> fork seq: ops at or past it are void, credits capped below it.
        self.fork_at: dict[bytes, int] = {}

    @property
    def pool_available(self) -> int:
        # Not capped at zero: exhaustion cannot be decided from one op's causal
        # past, so the pool is reported as folded (protocols/ops.md §6.2.5).
        return POOL_TOTAL_CENTS - self.granted - self.claimed

    def account(self, author: bytes) -> Account:
        acct = self.accounts.get(author)
        if acct is None:
            acct = self.accounts[author] = Account()
        return acct

    def apply(self, op: Op) -> Effect | None:
        """Fold one op; returns its ledger effect (None for non-ledger kinds)."""
        body = op.body
        is_ledger_kind = isinstance(body, Register | Claim | Transfer)
        fork = self.fork_at.get(op.author)
        if fork is not None and op.seq >= fork:  # an equivocator's ops from the fork on
            if is_ledger_kind:
                self.effects[op.id] = Effect(Void.FORKED)
                return self.effects[op.id]
            return None
        acct = self.account(op.author)
        for dep in op.deps:  # acknowledgements come first: they are in the op's past
            self._acknowledge(op.author, acct, dep.author, dep.seq)
        if not isinstance(body, Register | Claim | Transfer):
            return None
        if isinstance(body, Register):
            effect = self._register(acct, op, body)
        elif acct.registered_at is None:
            effect = Effect(Void.NOT_REGISTERED)
        elif isinstance(body, Claim):
            effect = self._claim(acct, op, body)
        else:
            effect = self._transfer(acct, op, body)
        self.effects[op.id] = effect
        return effect

    def _register(self, acct: Account, op: Op, body: Register) -> Effect:
        if acct.registered_at is not None:
            return Effect(Void.ALREADY_REGISTERED)
        acct.registered_at = op.timestamp
        acct.name = body.name
        self.granted += REGISTER_GRANT_CENTS
        return Effect(None, REGISTER_GRANT_CENTS)

    def _claim(self, acct: Account, op: Op, body: Claim) -> Effect:
        assert acct.registered_at is not None
        if body.week in acct.claimed_weeks:
            return Effect(Void.ALREADY_CLAIMED)
        first, last = claim_window(acct.registered_at, op.timestamp)
        if not first <= body.week <= last:
            return Effect(Void.WEEK_OUT_OF_RANGE)
        acct.claimed_weeks.add(body.week)
        acct.claimed += WEEKLY_FLOW_CENTS
        acct.last_claim_at = op.timestamp
        self.claimed += WEEKLY_FLOW_CENTS
        return Effect(None, WEEKLY_FLOW_CENTS)

    def _transfer(self, acct: Account, op: Op, body: Transfer) -> Effect:
        if body.amount > acct.spendable:
            return Effect(Void.OVERDRAFT, body.amount)
        acct.spent += body.amount
        self.transferred += body.amount
        payer_credits = self._credits.setdefault(body.to, {}).setdefault(op.author, [])
        # Seqs grow along a feed, so the list stays sorted. The payee cannot have
        # acknowledged this seq yet: its ack names an op that is applied first.
        payer_credits.append((op.seq, body.amount))
        return Effect(None, body.amount)

    def _cap(self, payer: bytes) -> int:
        fork = self.fork_at.get(payer)
        return fork - 1 if fork is not None else 1 << 62

    def _acknowledge(self, payee: bytes, acct: Account, payer: bytes, seq: int) -> None:
        old = acct.ack.get(payer, 0)
        if seq <= old:
            return
        acct.ack[payer] = seq
        cap = self._cap(payer)
        lo, hi = min(old, cap), min(seq, cap)
        if hi <= lo:
            return
        credits = self._credits.get(payee, {}).get(payer)
        if not credits:
            return
        start = bisect.bisect_right(credits, (lo, 1 << 62))
        end = bisect.bisect_right(credits, (hi, 1 << 62))
        acct.acked_credit += sum(amount for _, amount in credits[start:end])

    def acknowledgeable(self, payee: bytes) -> int:
        """Credits to `payee` that its next op would acknowledge (see `unacknowledged_payers`)."""
        acct = self.accounts.get(payee)
        ack = acct.ack if acct else {}
        total = 0
        for payer, top in self.unacknowledged_payers(payee).items():
            total += sum(a for s, a in self._credits[payee][payer] if ack.get(payer, 0) < s <= top)
        return total

    def incoming(self, payee: bytes) -> int:
        """All valid transfers to `payee`, acknowledged or not."""
        return sum(a for lst in self._credits.get(payee, {}).values() for _, a in lst)

    def unacknowledged_payers(self, payee: bytes) -> dict[bytes, int]:
        """Payer -> highest seq of a valid transfer to `payee` not yet acknowledged."""
        acct = self.accounts.get(payee)
        ack = acct.ack if acct else {}
        out: dict[bytes, int] = {}
        for payer, credits in self._credits.get(payee, {}).items():
            top = min(credits[-1][0], self._cap(payer))
            if top > ack.get(payer, 0):
                out[payer] = top
        return out


def fold(ops: Iterable[Op], fork_at: dict[bytes, int]) -> Ledger:
    """A fresh ledger over `ops` (in causal order), knowing the forks in `fork_at`."""
    ledger = Ledger()
    ledger.fork_at = dict(fork_at)
    for op in ops:
        ledger.apply(op)
    return ledger
