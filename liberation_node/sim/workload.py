"""What simulated users write: a mix of every op kind, always one the ledger accepts.

The body is chosen from what the writer's own replica shows (registered yet? a
claimable week? a balance to pay from? a post to retract?), so that honest
writes are never refused (a refusal is counted and shows in the report).
"""

from __future__ import annotations

import random

from ..core.bodies import CHANNELS, Body, Claim, Post, Register, Retract, Transfer, is_post
from ..core.ledger import iso_week
from ..core.replica import Replica


def choose_body(rng: random.Random, replica: Replica, me: bytes, now: int) -> Body:
    ledger = replica.ledger
    acct = ledger.accounts.get(me)
    if acct is None or acct.registered_at is None:
        return Register(f"human-{me[:3].hex()}")
    roll = rng.random()
    if roll < 0.15 and iso_week(now) not in acct.claimed_weeks:
        return Claim(iso_week(now))
    if roll < 0.40:
        have = acct.spendable + ledger.acknowledgeable(me)
        payees = [a for a, x in ledger.accounts.items() if a != me and x.registered_at is not None]
        if have > 0 and payees:
            return Transfer(rng.choice(payees), rng.randint(1, min(have, 10_000)), "sim")
    if roll < 0.50:
        posts = [op.id for op in replica.feed_ops(me) if is_post(op.body)]
        if posts:
            return Retract(rng.choice(posts))
    channel = rng.choice(CHANNELS)
    to = None
    if channel == "direct":
        others = [a for a in replica.feeds if a != me]
        if not others:
            channel = "social"
        else:
            to = rng.choice(others)
    # A direct message's text is marked, so that the checkers can look for it where
    # only ciphertext should be (sim/checkers.py).
    marker = DM_MARKER if to is not None else "message "
    return Post(channel, f"{marker}{rng.getrandbits(48):012x}", rng.randint(1, 10), to)


DM_MARKER = "secret dm "
