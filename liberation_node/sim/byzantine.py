"""Byzantine behaviour: what a malicious node sends besides running the real node.

Each act picks one attack and returns the raw frames to send on the byzantine
node's open connections, encoded exactly as sessions encode them:

- forged: an op in another author's name, next in that author's feed, signed
  with the wrong key (bad signature);
- altered: a real op with one bit flipped (bad signature or undecodable, or, in a
  post's content, a content that does not match its header: bad_content);
- replayed: real, old ops sent again (duplicates; harmless by design), pushed
  eagerly or not, with made-up hop counts;
- equivocation: two different ops at one seq (the next one, or one of the last
  few held), both really signed with the byzantine node's own key, sent to
  different peers (ops.md §9);
- garbage: random bytes as a frame, or a well-formed OPS frame of random "ops".
"""

from __future__ import annotations

import random

from ..core import codec, frames
from ..core.bodies import Post, dump_body
from ..core.events import ConnId
from ..core.ops import OP_DOMAIN, OP_FORMAT, Op, create_op, post_content
from .node import SimNode

KINDS = ("forged", "altered", "replayed", "equivocation", "garbage")


class Adversary:
    def __init__(self, rng: random.Random, network: str) -> None:
        self._rng = rng
        self._network = network
        self._n = 0
        self.signed: list[Op] = []  # equivocating ops, for the registry

    def act(self, node: SimNode, now: int) -> tuple[str, list[tuple[ConnId, bytes]]]:
        """One attack from `node`: (kind, frames to send). Nothing if it has no open peer."""
        assert node.mesh is not None
        conns = sorted(node.mesh.peers())
        if not conns:
            return "", []
        rng = self._rng
        self._n += 1
        kind = rng.choice(KINDS)
        conn = rng.choice(conns)
        replica = node.replica
        held = replica.order
        if kind in ("altered", "replayed") and not held:
            kind = "forged"
        if kind == "forged":
            return kind, [(conn, _ops_frame([self._forge(node, now)]))]
        if kind == "altered":
            wire = bytearray(replica.carried(rng.choice(held)))
            at = rng.randrange(len(wire) - 64, len(wire)) if rng.random() < 0.5 \
                else rng.randrange(len(wire))
            wire[at] ^= 1 << rng.randrange(8)
            return kind, [(conn, _ops_frame([bytes(wire)]))]
        if kind == "replayed":
            picks = sorted(rng.sample(range(len(held)), min(len(held), rng.randint(1, 8))))
            # Eager replays with made-up hop counts: a liar about distances must not
            # break the gossip tree for anyone else (sync.md §5.3).
            return kind, [(conn, frames.encode(frames.Ops(
                rng.random() < 0.5, tuple((replica.carried(held[i]),
                                           rng.randint(0, frames.MAX_HOPS))
                                          for i in picks))))]
        if kind == "equivocation":
            a, b = self._equivocate(node, now)
            other = rng.choice(conns)
            return kind, [(conn, _ops_frame([a.carried])), (other, _ops_frame([b.carried]))]
        if rng.random() < 0.5:
            return kind, [(conn, rng.randbytes(rng.randint(1, 64)))]
        return kind, [(conn, _ops_frame([rng.randbytes(rng.randint(1, 200))]))]

    def _forge(self, node: SimNode, now: int) -> bytes:
        replica = node.replica
        victims = [a for a in replica.feeds if a != node.identity.public_key]
        victim = self._rng.choice(victims) if victims else self._rng.randbytes(32)
        feed = replica.feeds.get(victim)
        head = feed.ops[-1] if feed is not None and feed.ops else None
        header, _ = post_content(Post("social", f"forged {self._n}", 1, None), node.identity,
                                 self._network, None)
        kind, body = dump_body(header)
        fields = [OP_FORMAT, self._network, victim, head.seq + 1 if head else 1,
                  head.id if head else None, [], max(now, head.timestamp if head else 0),
                  kind, codec.sorted_map(body)]
        signature = node.identity.sign(OP_DOMAIN + codec.pack(fields))  # not the victim's key
        return codec.pack([*fields, signature])

    def _equivocate(self, node: SimNode, now: int) -> tuple[Op, Op]:
        me = node.identity.public_key
        feed = node.replica.feeds.get(me)
        seq = 1
        if feed is not None:
            # Anywhere up to the next seq: a fork below held ops voids them, and with them
            # credits others spent (the cascade of ops.md §9.5).
            top = feed.fork_seq if feed.fork_seq is not None else feed.head_seq + 1
            seq = self._rng.randint(max(1, top - 3), top)
        prev = feed.ops[seq - 2] if feed is not None and seq >= 2 else None
        ts = max(now, prev.timestamp if prev else 0)
        pair = tuple(create_op(node.identity, network=self._network, seq=seq,
                               prev=prev.id if prev else None, timestamp=ts,
                               body=Post("billboard", f"equivocation {self._n}{side}", 1, None))
                     for side in "ab")
        self.signed.extend(pair)
        return pair[0], pair[1]


def _ops_frame(wires: list[bytes]) -> bytes:
    return frames.encode(frames.Ops(False, tuple((wire, frames.MAX_HOPS) for wire in wires)))
