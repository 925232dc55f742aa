"""Shared pieces of the vector generator: fixed identities and times, hex, raw encoding.

Nothing here reads a clock or a random source: every identity comes from a fixed
seed, every timestamp is a constant, and Ed25519 signatures are deterministic
(RFC 8032), so the vectors come out byte-identical on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from liberation_node.core import codec
from liberation_node.core.bodies import (
    Body,
    Claim,
    Post,
    PostHeader,
    Register,
    Retract,
    Transfer,
    dump_body,
)
from liberation_node.core.errors import Rejection
from liberation_node.core.identity import Identity, id_to_text
from liberation_node.core.ingested import Ingested
from liberation_node.core.ledger import Ledger
from liberation_node.core.ops import OP_DOMAIN, OP_FORMAT, Dep, Op, create_op
from liberation_node.core.records import RECORD_DOMAIN
from liberation_node.core.replica import Replica

NETWORK = "testnet"
OTHER_NETWORK = "othernet"
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_767_614_400_000  # 2026-01-05T12:00:00Z, the Monday of ISO week 2026-W02 (202602)


def who(i: int) -> Identity:
    """The fixed test identity number `i`: seed = 32 bytes of value i."""
    return Identity.from_seed(bytes([i]) * 32)


ALICE, BOB, CAROL, DAVE = who(1), who(2), who(3), who(4)
NAMES = {ALICE.public_key: "alice", BOB.public_key: "bob", CAROL.public_key: "carol",
         DAVE.public_key: "dave"}


def hx(data: bytes | None) -> str | None:
    return None if data is None else bytes(data).hex()


def h(data: bytes) -> str:
    return bytes(data).hex()


# -- building arbitrary (also invalid) encodings ------------------------------------------

class Raw(bytes):
    """Bytes spliced verbatim into an encoding, to build non-canonical input on purpose."""


def _header(n: int, fix: int, x16: int, x32: int, fix_max: int) -> bytes:
    if n <= fix_max:
        return bytes([fix | n])
    if n <= 0xFFFF:
        return bytes([x16]) + n.to_bytes(2, "big")
    return bytes([x32]) + n.to_bytes(4, "big")


def enc(value: Any) -> bytes:
    """Canonical msgpack, except that `Raw` parts go in as they are and dicts keep their order."""
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, list | tuple):
        return _header(len(value), 0x90, 0xDC, 0xDD, 15) + b"".join(enc(v) for v in value)
    if isinstance(value, dict):
        return _header(len(value), 0x80, 0xDE, 0xDF, 15) + b"".join(
            enc(k) + enc(v) for k, v in value.items())
    return codec.pack(value)


def signed_op(signer: Identity, fields: Sequence[Any], domain: bytes = OP_DOMAIN) -> bytes:
    """An op wire from nine fields as given (valid or not), signed over exactly those bytes."""
    assert len(fields) == 9
    unsigned = enc(list(fields))
    signature = signer.sign(domain + unsigned)
    return bytes([unsigned[0] + 1]) + unsigned[1:] + enc(signature)


def signed_record(signer: Identity, fields: Sequence[Any]) -> bytes:
    """A record wire from seven fields as given, signed over exactly those bytes."""
    assert len(fields) == 7
    unsigned = enc(list(fields))
    signature = signer.sign(RECORD_DOMAIN + unsigned)
    return bytes([unsigned[0] + 1]) + unsigned[1:] + enc(signature)


def rejection_reason(fn: Any, *args: Any, **kwargs: Any) -> str | None:
    """The `Reason` value `fn` rejects with, or None when it accepts."""
    try:
        fn(*args, **kwargs)
    except Rejection as rejection:
        return rejection.reason.value
    return None


# -- feeds --------------------------------------------------------------------------------

def seal_for(identity: Identity, seq: int, timestamp: int) -> bytes:
    """The 'fresh randomness' of a vector's direct message: fixed, so the vectors are
    reproducible (a real writer draws it from its entropy source, ops.md §13.3)."""
    return hashlib.blake2b(b"vector seal" + identity.public_key + seq.to_bytes(8, "big")
                           + timestamp.to_bytes(8, "big"), digest_size=32).digest()


class Writer:
    """Writes one author's feed with `create_op` (so also ops a careful node would refuse),
    in op format `format` (ops.md §12: 2, or 1 for the legacy vectors)."""

    def __init__(self, identity: Identity, network: str = NETWORK,
                 format: int = OP_FORMAT) -> None:
        self.identity = identity
        self.network = network
        self.format = format
        self.head: Op | None = None

    def write(self, body: Body, timestamp: int, deps: Iterable[Dep] = ()) -> Op:
        op = self.after(self.head, body, timestamp, deps)
        self.head = op
        return op

    def after(self, prev: Op | None, body: Body, timestamp: int, deps: Iterable[Dep] = ()) -> Op:
        """An op following `prev` without moving the head: how forks are written."""
        seq = prev.seq + 1 if prev else 1
        return create_op(self.identity, network=self.network, seq=seq,
                         prev=prev.id if prev else None, timestamp=timestamp, body=body,
                         deps=tuple(deps), format=self.format,
                         seal=seal_for(self.identity, seq, timestamp))


def dep_json(dep: Dep) -> dict[str, Any]:
    return {"author": h(dep.author), "seq": dep.seq, "id": h(dep.id)}


def body_json(body: Body) -> dict[str, Any]:
    """A body as JSON: its canonical map, with bin fields (`to`, `post`) as hex."""
    _, fields = dump_body(body)
    return {k: h(v) if isinstance(v, bytes) else v for k, v in codec.sorted_map(fields).items()}


def describe_body(body: Body) -> str:
    if isinstance(body, Register):
        return f"register {body.name!r}"
    if isinstance(body, Claim):
        return f"claim week {body.week}"
    if isinstance(body, Transfer):
        return f"transfer {body.amount} cents to {NAMES.get(body.to, h(body.to)[:8])}"
    if isinstance(body, Post | PostHeader):
        return f"post on {body.channel}"
    assert isinstance(body, Retract)
    return f"retract {h(body.post)[:8]}"


def op_row(label: str, op: Op) -> dict[str, Any]:
    return {"label": label, "id": h(op.id), "author": h(op.author), "seq": op.seq,
            "kind": op.kind, "what": describe_body(op.body), "wire_hex": h(op.wire)}


def step_json(label: str, wire: bytes, result: Ingested) -> dict[str, Any]:
    """What `Replica.ingest` did with one input, in the vectors' terms (ops.md §5.5)."""
    return {
        "label": label,
        "wire_hex": h(wire),
        "outcome": result.outcome.value,
        "reason": result.rejection.reason.value if result.rejection else None,
        "missing": dep_json(result.missing) if result.missing else None,
        "applied": [h(op.id) for op in result.applied],
        "excluded": [h(op.id) for op in result.excluded],
        "forked": [h(a) for a in result.forked],
        "rejected_waiters": [{"id": h(op.id), "reason": r.reason.value}
                             for op, r in result.rejected_waiters],
    }


def run_steps(steps: Sequence[tuple[str, bytes]], network: str = NETWORK
              ) -> tuple[Replica, list[dict[str, Any]]]:
    replica = Replica(network)
    return replica, [step_json(label, wire, replica.ingest(wire)) for label, wire in steps]


def account_json(ledger: Ledger, author: bytes) -> dict[str, Any]:
    acct = ledger.accounts.get(author)
    return {
        "author": h(author),
        "name": NAMES.get(author),
        "registered": acct is not None and acct.registered_at is not None,
        "registered_name": acct.name if acct and acct.registered_at is not None else None,
        "claimed_weeks": sorted(acct.claimed_weeks) if acct else [],
        "claimed": acct.claimed if acct else 0,
        "acknowledged_credit": acct.acked_credit if acct else 0,
        "spent": acct.spent if acct else 0,
        "spendable": acct.spendable if acct else 0,
        "incoming": ledger.incoming(author),
    }


def effect_json(replica: Replica, op: Op) -> dict[str, Any]:
    """An op's fate in a replica: held or not, and its ledger effect (ops.md §6.2, §7.2)."""
    held = op.id in replica.ops
    effect = replica.ledger.effects.get(op.id) if held else None
    return {
        "held": held,
        "effect": None if effect is None else (effect.void.value if effect.void else "applied"),
        "amount": None if effect is None else effect.amount,
    }


def feeds_json(replica: Replica) -> dict[str, Any]:
    """The held feeds: frontier, forks with their proofs, held op ids (ops.md §5, §9)."""
    return {
        "frontier": {h(a): s for a, s in sorted(replica.frontier().items())},
        "forks": [{"author": h(a), "fork_seq": s, "proofs": [h(p.id) for p in proofs]}
                  for a, s, proofs in sorted(replica.forks(), key=lambda f: f[0])],
        "held": sorted(h(i) for i in replica.ops),
    }


def state_json(replica: Replica, authors: Sequence[bytes]) -> dict[str, Any]:
    """Everything two replicas holding the same ops must agree on (ops.md §6.2, §9, §10)."""
    ledger = replica.ledger
    return {
        **feeds_json(replica),
        "accounts": [account_json(ledger, a) for a in authors],
        "pool": {"granted": ledger.granted, "claimed": ledger.claimed,
                 "available": ledger.pool_available},
        "transferred": ledger.transferred,
        "feed_entries": [{"author": h(a), "entry_hex": h(replica.feeds[a].entry(a))}
                         for a in sorted(replica.feeds)],
        "ops_digest": h(replica.ops_digest()),
        "records_digest": h(replica.records_digest()),
        "digest": h(replica.digest()),
    }


def text_id(identity: Identity) -> str:
    return id_to_text(identity.public_key)
