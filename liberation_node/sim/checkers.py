"""Invariants checked while a run goes and at its end (DESIGN §6), VOPR-style: each
checker watches what the nodes report and says what went wrong, with the node and
the op, in one line. The simulator never stops on a violation; it collects them.

- Authenticity (safety): every op a replica ever holds was signed by its author:
  it is in the registry of ops that writers actually produced. A forged or
  altered op is not.
- Durability (safety): an op a node persisted is never lost — not by a crash
  and restart, not later — unless its author equivocated (ops.md §9). The store
  holds what the replica holds but for the batches not yet committed (what a
  crash loses), and a restart rebuilds exactly the stored op set. An own write
  is acknowledged only once committed, so no acknowledged write is ever lost.
- Honesty: no honest author ever publishes two ops at one seq (an op that died
  with its node before its commit was never published, sync.md §10.1), no
  honest author is found forked by any node, no op is voided unless
  its author equivocated, and no honest peer is ever blamed for bad input or
  has its session closed as broken (the channel is reliable and ordered: loss
  costs time, or the connection, never a frame), and no honest node, nor the
  address it connects from, is ever banned (sync.md §4.7: not even where loss
  breaks connections, or a liar shares its peers).
- Convergence (liveness): once faults have healed and a quiet period passed,
  every replica holds the same ops (equal op digests), and the same presence
  records up to the one refresh in flight: each node holds every record key
  held anywhere, at most one republication behind the newest (records are
  republished every minute with the production timers, so whole-replica digests
  are rarely equal at one instant in a large mesh; comparing them by content is
  what convergence means for last-writer-wins data).
- Agreement: replicas with the same ops have the same derived state (ledger),
  which is the CRDT promise; a broken merge shows up here.
- Privacy (ops.md §13): no node ever stores a direct message's plaintext (every
  batch a node commits is searched for the workload's marker), and at the end a
  node can read a direct message exactly when it is its author or recipient, and
  then reads what was written.
- Retraction (ops.md §12.6): at the end, no node holds, stores or shows the
  content of a post it holds a retract of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from ..core import codec
from ..core.bodies import Body, Post, PostHeader, Retract
from ..core.events import Banned, Changed, Misbehaved, PeerDown
from ..core.identity import Identity, short_id
from ..core.ledger import Ledger
from ..core.ops import Op
from ..core.reading import Reader
from ..core.replica import Replica
from ..core.session import CloseReason
from .workload import DM_MARKER

_MARKER = DM_MARKER.encode()

# Close reasons that say the peer broke the protocol (sync.md §4.3).
_BLAMING = {CloseReason.PROTOCOL_ERROR, CloseReason.BAD_BINDING, CloseReason.RATE_LIMITED,
            CloseReason.MISBEHAVING, CloseReason.WRONG_NETWORK, CloseReason.UNSUPPORTED_VERSION}


class Violations:
    """Distinct violation messages in the order first seen, with repeat counts."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._seen: dict[str, tuple[int, int]] = {}  # message -> (first at ms, count)

    def add(self, at_ms: int, message: str) -> None:
        first, count = self._seen.get(message, (at_ms, 0))
        if count or len(self._seen) < self.limit:
            self._seen[message] = (first, count + 1)

    def __len__(self) -> int:
        return len(self._seen)

    def lines(self) -> list[str]:
        return [f"at {at} ms: {msg}" + (f" (x{n})" if n > 1 else "")
                for msg, (at, n) in self._seen.items()]


class Registry:
    """Every op legitimately signed in the run, by whom, and who equivocated."""

    def __init__(self) -> None:
        self.ops: dict[bytes, Op] = {}  # every op signed
        self.published: dict[bytes, Op] = {}  # the ops that left their author's node
        self._slots: dict[tuple[bytes, int], bytes] = {}  # (author, seq) -> first op id
        self.equivocators: dict[bytes, int] = {}  # author -> lowest seq published twice
        self.honest: dict[bytes, int] = {}  # honest author -> node index
        self.posts: dict[bytes, Post] = {}  # op id -> the post its writer asked for

    def sign(self, op: Op) -> None:
        """`op` exists: genuine, whether or not anyone but its author ever sees it."""
        self.ops[op.id] = op

    def add(self, op: Op) -> bool:
        """Record `op` as published; False if its author published another op at that seq."""
        self.ops[op.id] = op
        self.published[op.id] = op
        first = self._slots.setdefault((op.author, op.seq), op.id)
        if first == op.id:
            return True
        low = self.equivocators.get(op.author)
        self.equivocators[op.author] = op.seq if low is None else min(low, op.seq)
        return False

    def voidable(self, op: Op) -> bool:
        """May a replica drop `op`? Only at or past a seq its author signed twice (§9.3)."""
        fork = self.equivocators.get(op.author)
        return fork is not None and op.seq >= fork


def records_converged(replicas: list[Replica], refresh_ms: int, *,
                      explain: bool = False) -> bool | str:
    """Do the replicas agree on presence records, by content? Every record key held
    anywhere is held everywhere, at a version at most one republication (1.25 x the
    refresh period, its jitter included) behind the newest. With `explain`, a
    disagreement is returned as a message instead of False."""
    if not explain and len({len(r.records) for r in replicas}) > 1:
        # Some replica lacks a key another holds: sampled every 100 ms of a run, this
        # spares a walk over every record of every replica (1000 x 2000 at 1000 nodes).
        return False
    newest: dict[tuple[bytes, str], int] = {}
    for replica in replicas:
        for key, held in replica.records.items():
            newest[key] = max(newest.get(key, held.version), held.version)
    lag = refresh_ms * 5 // 4
    for i, replica in enumerate(replicas):
        for key, version in newest.items():
            record = replica.records.get(key)
            if record is None or record.version < version - lag:
                if not explain:
                    return False
                what = "lacks" if record is None else f"is {version - record.version} ms behind on"
                return f"replica {i} {what} {short_id(key[0])} {key[1]}"
    return True


def ledger_fingerprint(replica: Replica) -> bytes:
    """A hash of everything the ledger derives: equal op sets must give equal values."""
    return fingerprint(replica.ledger)


def fingerprint(ledger: Ledger) -> bytes:
    """A hash of everything `ledger` holds (see `ledger_fingerprint`)."""
    h = hashlib.blake2b(digest_size=16)
    for author in sorted(ledger.accounts):
        a = ledger.accounts[author]
        h.update(codec.pack([author, a.registered_at, a.name, a.claimed, sorted(a.claimed_weeks),
                             a.last_claim_at, a.spent, a.acked_credit, sorted(a.ack.items())]))
    h.update(codec.pack([ledger.granted, ledger.claimed, ledger.transferred,
                         sorted(ledger.fork_at.items())]))
    for op_id in sorted(ledger.effects):
        effect = ledger.effects[op_id]
        h.update(op_id + codec.pack([effect.void.value if effect.void else None, effect.amount]))
    return h.digest()


class Checker:
    def __init__(self, registry: Registry, violations: Violations) -> None:
        self.registry = registry
        self.violations = violations
        self._held: dict[int, dict[bytes, Op]] = {}  # node -> every op it ever persisted
        self._at_crash: dict[int, set[bytes]] = {}  # node -> op ids stored when it went down
        self.acknowledged = 0  # own writes acknowledged (committed) in the run

    # -- while running ----------------------------------------------------------------

    def signed(self, node: int, op: Op, *, byzantine: bool, body: Body | None = None) -> None:
        """Node `node` signed `op` through its mesh (from `body`, what its user wrote); it
        is published once acknowledged (`wrote`), when its commit is done."""
        if not byzantine:
            self.registry.honest.setdefault(op.author, node)
        self.registry.sign(op)
        if isinstance(body, Post):
            self.registry.posts[op.id] = body

    def wrote(self, at: int, node: int, op: Op, *, byzantine: bool) -> None:
        """`op` was published: an honest write acknowledged after its commit, or
        whatever a byzantine node sends."""
        if not byzantine:
            self.registry.honest.setdefault(op.author, node)
            self.acknowledged += 1
        if not self.registry.add(op) and op.author in self.registry.honest:
            self.violations.add(at, f"honest node {node} signed two ops at seq {op.seq}")

    def persisted(self, node: int, event: Changed, at: int = 0) -> None:
        """Node `node` committed `event`: from now on it must never lose those ops."""
        held = self._held.setdefault(node, {})
        for op in event.applied:
            held[op.id] = op
            if _MARKER in op.wire:
                self.violations.add(at, f"node {node} stored op {op.id.hex()[:16]} "
                                    "with a direct message's plaintext in it")
        for _, _, op_id, content in event.contents:
            if content is not None and _MARKER in content:
                self.violations.add(at, f"node {node} stored the content of "
                                    f"{op_id.hex()[:16]} with a direct message's plaintext")

    def forked(self, at: int, node: int, author: bytes, seq: int) -> None:
        if author in self.registry.honest:
            self.violations.add(at, f"node {node} found honest node "
                                f"{self.registry.honest[author]} forked at seq {seq}")

    def changed(self, at: int, node: int, event: Changed) -> None:
        for op in event.applied:
            if op.id not in self.registry.ops:
                self.violations.add(at, f"node {node} accepted op {op.id.hex()[:16]} "
                                    f"(author {short_id(op.author)}, seq {op.seq}) that its "
                                    "author never signed: forged or altered")
        for op in event.excluded:
            if not self.registry.voidable(op):
                self.violations.add(at, f"node {node} dropped op {op.id.hex()[:16]} of "
                                    f"{short_id(op.author)}, who never equivocated")

    def blamed(self, at: int, node: int, event: Misbehaved) -> None:
        if event.peer is not None and event.peer in self.registry.honest:
            self.violations.add(at, f"node {node} blamed honest node "
                                f"{self.registry.honest[event.peer]}: {event.reason}")

    def banned(self, at: int, node: int, event: Banned, honest: set[int]) -> None:
        """A ban (sync.md §4.7) of an honest node's id, or of the address it connects
        from (the simulator names node i's address `sim:i`)."""
        who = self.registry.honest.get(event.peer) if event.peer is not None else None
        if event.key.startswith("addr:sim:") and int(event.key[9:]) in honest:
            who = int(event.key[9:])
        elif event.key.startswith("id:") and bytes.fromhex(event.key[3:]) in self.registry.honest:
            who = self.registry.honest[bytes.fromhex(event.key[3:])]
        else:
            who = None
        if who is not None:
            self.violations.add(at, f"node {node} banned honest node {who} ({event.key[:20]}): "
                                f"{event.reason}")

    def closed(self, at: int, node: int, event: PeerDown) -> None:
        """An honest session closed for a reason that blames the peer (sync.md §4.3)."""
        if event.by_peer or event.peer not in self.registry.honest:
            return
        if event.reason in _BLAMING:
            self.violations.add(at, f"node {node} closed its session with honest node "
                                f"{self.registry.honest[event.peer]}: {event.reason} "
                                f"({event.detail})")

    def crashing(self, at: int, node: int, replica: Replica, stored: list[bytes],
                 unstored: tuple[Changed, ...] = ()) -> None:
        """Just before a crash: the store holds the replica's ops but for the batches
        `unstored` (not committed yet: the crash loses them)."""
        applied = {op.id for e in unstored for op in e.applied}
        excluded = {op.id for e in unstored for op in e.excluded}
        held = set(stored)
        if held - set(replica.ops) - excluded or set(replica.ops) - held - applied:
            self.violations.add(at, f"node {node}: store holds {len(stored)} ops, replica "
                                f"{len(replica.ops)} with {len(applied)} not committed yet: "
                                "they parted before the crash")
        self._at_crash[node] = held

    def restarted(self, at: int, node: int, replica: Replica) -> None:
        before = self._at_crash.pop(node, None)
        if before is not None and set(replica.ops) != before:
            self.violations.add(at, f"node {node}: restart rebuilt a different op set than its "
                                "store held when it crashed")
        self._lost(at, node, replica)

    # -- at the end -------------------------------------------------------------------

    def contents(self, at: int, node: int, identity: Identity, replica: Replica,
                 stored: bytes | None = None,
                 stored_contents: Collection[bytes] = ()) -> None:
        """At the end: who reads which direct message, and no retracted content left
        (`stored`: every byte of the node's store, `stored_contents` its contents)."""
        reader = Reader(identity, replica.network)
        me = identity.public_key
        for op in replica.ops.values():
            body = op.body
            if isinstance(body, Retract):
                if body.post in replica.contents:
                    self.violations.add(at, f"node {node} holds the content of "
                                        f"{body.post.hex()[:16]}, which it knows is retracted")
                continue
            if not isinstance(body, PostHeader):
                continue
            reading = reader.read(op, replica.contents)
            post = self.registry.posts.get(op.id)
            if post is None or body.channel != "direct":
                continue
            party = me in (op.author, post.to)
            if reading.text is not None and (not party or reading.text != post.text):
                self.violations.add(at, f"node {node} reads direct message "
                                    f"{op.id.hex()[:16]} of {short_id(op.author)}"
                                    + ("" if party else ", which is not addressed to it"))
            elif reading.text is None and party and op.id in replica.contents:
                self.violations.add(at, f"node {node} cannot read its own direct message "
                                    f"{op.id.hex()[:16]}: {reading.unreadable}")
        if stored is not None and _MARKER in stored:
            self.violations.add(at, f"node {node}'s store holds a direct message's plaintext")
        held = set(stored_contents)
        for post_id in replica.contents.retracted:
            post = self.registry.posts.get(post_id)
            if post is not None and post.to is None and post.text.encode() in held:
                self.violations.add(at, f"node {node}'s store still holds the text of "
                                    f"retracted post {post_id.hex()[:16]}")

    def final(self, at: int, replicas: dict[int, Replica], refresh_ms: int) -> None:
        for node, replica in replicas.items():
            self._lost(at, node, replica)
            for op in replica.ops.values():
                if op.id not in self.registry.ops:
                    self.violations.add(at, f"node {node} holds op {op.id.hex()[:16]} that "
                                        "its author never signed")
        by_digest: dict[bytes, list[int]] = {}
        for node, replica in replicas.items():
            by_digest.setdefault(replica.ops_digest(), []).append(node)
        if len(by_digest) > 1:
            groups = sorted(by_digest.values(), key=len, reverse=True)
            shown = "; ".join(f"{len(g)} node(s) e.g. {g[:5]}" for g in groups[:4])
            self.violations.add(at, f"not converged: {len(by_digest)} different op digests "
                                f"({shown})")
        lagging = records_converged(list(replicas.values()), refresh_ms, explain=True)
        if lagging is not True:
            self.violations.add(at, f"records not converged: {lagging}")
        for nodes in by_digest.values():
            prints: dict[bytes, list[int]] = {}
            for node in nodes:
                prints.setdefault(ledger_fingerprint(replicas[node]), []).append(node)
            if len(prints) > 1:
                groups = sorted(prints.values(), key=len, reverse=True)
                self.violations.add(at, f"same digest, different ledgers: nodes {groups[0][:5]} "
                                    f"vs {groups[1][:5]}: the merge is not deterministic")

    def _lost(self, at: int, node: int, replica: Replica) -> None:
        for op_id, op in self._held.get(node, {}).items():
            if op_id not in replica.ops and not self.registry.voidable(op):
                self.violations.add(at, f"node {node} lost op {op_id.hex()[:16]} "
                                    f"({short_id(op.author)} seq {op.seq}) that it had held")
