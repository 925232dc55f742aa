"""frames.json: session frames, HELLO checks and one anti-entropy round (sync.md §2-§4, §6).

Every valid frame is built with `frames.encode` and read back with `frames.decode`;
every refused one is spelled out byte by byte and checked against `frames.decode`
here, so the file cannot state a verdict the implementation does not give. The
anti-entropy part builds two small replicas from fixed seeds, runs the bucket
hash and head comparison of reconcile.py on them with a fixed salt, and records
every frame of the round.

SYNC_HEADS has six fields; the last, `partial`, lists the covered buckets whose
rows did not all fit one frame (sync.md §6.3). For those the receiver compares
only the feeds and record keys the sender listed (sync.md §6.4): `partial`
shows that with the round's replicas, and `window` shows which rows the sender
puts in when one bucket is too big (1,300 feeds in one bucket): the rows
sorted, a cyclic window of at most 602 feed rows (512 record rows) starting at
`rotate mod n`, `rotate` being the round salt's first 4 bytes as a big-endian
integer.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from typing import Any

from liberation_node.core import frames, reconcile
from liberation_node.core.bodies import Claim, Post, Register, Transfer
from liberation_node.core.identity import Identity
from liberation_node.core.ops import Op
from liberation_node.core.records import NodeInfo, NodeLinks, Record, create_record
from liberation_node.core.replica import Replica
from liberation_node.core.session import (
    HELLO_DOMAIN,
    Session,
    SessionClosed,
    SessionConfig,
    State,
)

from .common import (
    ALICE,
    BOB,
    CAROL,
    MINUTE,
    NETWORK,
    OTHER_NETWORK,
    T0,
    Writer,
    enc,
    h,
    rejection_reason,
    who,
)

# -- the frame table, as the vectors describe it ------------------------------------------

# Field types: "uint", "bool", "str", "bin", {"list": T}, {"row": [T, ...]} (a fixed array).
REF = {"row": ["bin", "uint", "bin"]}
ANNOUNCED = {"row": ["bin", "uint", "bin", "uint"]}  # a ref and the sender's hop count
ITEM = {"row": ["bin", "uint"]}  # a wire and its hop count
TYPES: dict[str, tuple[type, list[tuple[str, Any]]]] = {
    "HELLO": (frames.Hello, [("version", "uint"), ("network", "str"), ("node_id", "bin"),
                             ("binding_sig", "bin"), ("software", "str")]),
    "CLOSE": (frames.Close, [("reason", "str"), ("detail", "str")]),
    "PING": (frames.Ping, [("nonce", "uint")]),
    "PONG": (frames.Pong, [("nonce", "uint"), ("clock", "uint")]),
    "OPS": (frames.Ops, [("eager", "bool"), ("ops", {"list": ITEM})]),
    "IHAVE": (frames.IHave, [("refs", {"list": ANNOUNCED})]),
    "GRAFT": (frames.Graft, [("refs", {"list": REF})]),
    "PRUNE": (frames.Prune, []),
    "RECORDS": (frames.Records, [("eager", "bool"), ("records", {"list": ITEM})]),
    "SYNC_OPEN": (frames.SyncOpen, [("round", "uint"), ("digest", "bin"), ("authors", "uint"),
                                    ("salt", "bin")]),
    "SYNC_SAME": (frames.SyncSame, [("round", "uint")]),
    "SYNC_BUCKETS": (frames.SyncBuckets, [("round", "uint"), ("bits", "uint"),
                                          ("hashes", "bin")]),
    "SYNC_HEADS": (frames.SyncHeads, [
        ("round", "uint"), ("bits", "uint"), ("buckets", {"list": "uint"}),
        ("heads", {"list": {"row": ["bin", "uint", "bin", {"list": "bin"}]}}),
        ("records", {"list": {"row": ["bin", "str", "bin"]}}),
        ("partial", {"list": "uint"})]),
    "WANT": (frames.Want, [("round", "uint"),
                           ("ranges", {"list": {"row": ["bin", "uint", "uint"]}}),
                           ("forks", {"list": "bin"}),
                           ("records", {"list": {"row": ["bin", "str"]}})]),
    "SIGNAL": (frames.Signal, [("to", "bin"), ("origin", "bin"), ("nonce", "uint"), ("ttl", "uint"),
                               ("payload", "str")]),
}
NAME_OF = {cls: name for name, (cls, _) in TYPES.items()}


def _json(value: Any) -> Any:
    if isinstance(value, bytes):
        return h(value)
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value


def frame_json(frame: frames.Frame) -> dict[str, Any]:
    """A frame as {"type", "fields", "hex"}: fields by name, bytes as hex, lists as arrays."""
    name = NAME_OF[type(frame)]
    names = [f for f, _ in TYPES[name][1]]
    assert names == [f.name for f in fields(frame)], name
    data = frames.encode(frame)
    assert frames.decode(data) == frame and len(data) <= frames.MAX_FRAME_BYTES
    values = (getattr(frame, n) for n in names)
    return {"type": name, "fields": dict(zip(names, (_json(v) for v in values), strict=True)),
            "size": len(data), "hex": h(data)}


def _valid(name: str, description: str, frame: frames.Frame) -> dict[str, Any]:
    return {"name": name, "description": description, "valid": True, "reason": None,
            **frame_json(frame)}


def _invalid(name: str, description: str, data: bytes, reason: str) -> dict[str, Any]:
    assert rejection_reason(frames.decode, data) == reason, name
    return {"name": name, "description": description, "valid": False, "reason": reason,
            "size": len(data), "hex": h(data)}


# -- fixed material -----------------------------------------------------------------------

BINDING = bytes(range(64))  # stands for the transport's binding value (transport.md)
OTHER_BINDING = bytes(range(64, 128))


def _register_op() -> Op:
    return Writer(ALICE).write(Register("alice"), T0)


def _record() -> Record:
    info = NodeInfo("alice-laptop", "liberation-node/0.1.0", ("https://192.0.2.10:7443/v1/signal",),
                    ("relay",), ((ALICE.public_key, 1),))
    return create_record(ALICE, network=NETWORK, version=T0, ttl_ms=5 * MINUTE, body=info)


def _hello(signer: Identity, *, version: int = 1, network: str = NETWORK,
           binding: bytes = BINDING, node_id: bytes | None = None,
           software: str = "liberation-node/0.1.0") -> frames.Hello:
    return frames.Hello(version, network, node_id or signer.public_key,
                        signer.sign(HELLO_DOMAIN + binding), software)


def _digest(i: int) -> bytes:
    return hashlib.blake2b(bytes([i]), digest_size=32).digest()


def _valid_cases() -> list[dict[str, Any]]:
    op, record = _register_op(), _record()
    a, b = ALICE.public_key, BOB.public_key
    ref = (a, 1, op.id)
    return [
        _valid("hello", "HELLO from alice (seed 01x32) for the binding value 00 01 .. 3f",
               _hello(ALICE)),
        _valid("close", "CLOSE with a reason of §4.3 and a detail",
               frames.Close("wrong_network", "network 'othernet'")),
        _valid("close_empty_detail", "the detail may be empty", frames.Close("shutdown", "")),
        _valid("ping", "PING: a nonce of up to 2^53 - 1", frames.Ping(6_543_210_987)),
        _valid("pong", "PONG echoes the nonce of the PING it answers, with the sender's clock",
               frames.Pong(6_543_210_987, 1_767_225_600_123)),
        _valid("ping_nonce_max", "the largest nonce, 2^53 - 1", frames.Ping(2**53 - 1)),
        _valid("ops_eager", "a gossip push of one op (ops.md §4.5's register) by its author: "
               "hop count 0", frames.Ops(True, ((op.wire, 0),))),
        _valid("ops_not_eager", "the same op sent in answer to a WANT: hop count unknown, "
               "255 (§5.1)", frames.Ops(False, ((op.wire, 255),))),
        _valid("ops_empty", "an empty list is well-formed", frames.Ops(False, ())),
        _valid("ihave", "IHAVE: (author, seq, id, hops) of ops the sender holds, 3 links "
               "from the author", frames.IHave(((*ref, 3),))),
        _valid("ihave_record", "IHAVE of a record: seq 0, the record's id (§5.6)",
               frames.IHave(((a, 0, record.id, 1),))),
        _valid("graft", "GRAFT the same op", frames.Graft((ref,))),
        _valid("graft_no_refs", "GRAFT without refs: push to me from now on (§5.5)",
               frames.Graft(())),
        _valid("prune", "PRUNE has no fields: the frame is [7]", frames.Prune()),
        _valid("records", "RECORDS pushing one node.info record, one link from its author",
               frames.Records(True, ((record.wire, 1),))),
        _valid("sync_open", "SYNC_OPEN: round 1, a digest, 10 feeds, an 8-byte salt",
               frames.SyncOpen(1, _digest(1), 10, bytes.fromhex("0123456789abcdef"))),
        _valid("sync_same", "SYNC_SAME answers round 1", frames.SyncSame(1)),
        _valid("sync_buckets", "SYNC_BUCKETS with bits 1: two 4-byte hashes",
               frames.SyncBuckets(1, 1, bytes.fromhex("a1a2a3a4b1b2b3b4"))),
        _valid("sync_heads", "SYNC_HEADS: a head row with fork proofs, one with seq 0, a record",
               frames.SyncHeads(1, 2, (0, 2), (
                   (a[:8], 0, bytes(8), (_digest(2)[:8], _digest(3)[:8])),
                   (b[:8], 7, _digest(4)[:8], ())),
                   ((a[:8], "node.info", _digest(5)[:8]),))),
        _valid("sync_heads_partial", "SYNC_HEADS covering buckets 5 and 9 of 16, bucket 9 "
               "only in part: 'partial' lists it (§6.3)",
               frames.SyncHeads(3, 4, (5, 9), (
                   (_digest(6)[:8], 12, _digest(7)[:8], ()),
                   (_digest(8)[:8], 1, _digest(9)[:8], ())),
                   ((_digest(6)[:8], "node.links", _digest(10)[:8]),), (9,))),
        _valid("want_round", "WANT closing round 1: full ids and an 8-byte prefix",
               frames.Want(1, ((a, 3, 5), (b[:8], 1, 2)), (a,), ((b[:8], "node.links"),))),
        _valid("want_standalone", "WANT round 0: a request on its own (causal past, §7.1)",
               frames.Want(0, ((b, 1, 4),), (), ())),
        _valid("signal", "SIGNAL: an offer relayed towards bob, 3 hops left",
               frames.Signal(b, a, 42, 3, '{"type": "offer", "sdp": "v=0"}')),
        _valid("close_detail_256_code_points",
               "text limits count code points, not UTF-8 bytes (here 512 bytes, Appendix A.2)",
               frames.Close("protocol_error", "é" * 256)),
        _valid("sync_heads_bucket_65535", "the largest bucket index a frame may carry "
               "(bits 16; a sender uses at most 12, §6.3)",
               frames.SyncHeads(1, 16, (65535,), (), (), (65535,))),
        _valid("sync_heads_4096_buckets", "a list of exactly MAX_ITEMS (4096) entries",
               frames.SyncHeads(1, 12, tuple(range(4096)), (), ())),
    ]


def _invalid_cases() -> list[dict[str, Any]]:
    a = ALICE.public_key
    good_hello = frames.encode(_hello(ALICE))
    oversize = enc([8, False, [[bytes(16384), 0]] * 3 + [[bytes(16361), 0]]])
    cases = [
        ("empty", "no bytes at all", b"", "undecodable"),
        ("truncated", "HELLO missing its last byte", good_hello[:-1], "undecodable"),
        ("trailing_byte", "a PING followed by one more byte", enc([2, 5]) + b"\xc0",
         "undecodable"),
        ("reserved_byte", "the reserved byte c1 as the nonce", bytes.fromhex("9202c1"),
         "undecodable"),
        ("invalid_utf8", "a CLOSE reason that is not UTF-8", bytes.fromhex("9301a1ffa0"),
         "undecodable"),
        ("long_int", "PING nonce 5 written as cc 05", bytes.fromhex("9202cc05"),
         "non_canonical"),
        ("signed_int", "PING nonce 5 written in the signed family (d0 05)",
         bytes.fromhex("9202d005"), "non_canonical"),
        ("long_array_header", "PING as dc 0002 instead of 92", bytes.fromhex("dc00020205"),
         "non_canonical"),
        ("oversize", "a RECORDS frame of 65,537 bytes: one more than MAX_FRAME_BYTES (its "
         "records have valid sizes; the size is checked first)", oversize, "oversize"),
        ("not_an_array", "a bare integer", enc(2), "malformed"),
        ("map_frame", "a map instead of an array", bytes.fromhex("81a174a470696e67"),
         "malformed"),
        ("empty_array", "[] has no type", enc([]), "malformed"),
        ("type_not_int", "type as a str", enc(["ping", 5]), "malformed"),
        ("type_bool", "type true (a boolean is not an integer)", enc([True]), "malformed"),
        ("type_negative", "type -1", enc([-1, 5]), "malformed"),
        ("type_unknown", "type 15 is not defined in version 1", enc([15]), "malformed"),
        ("extra_field", "PRUNE with one field", enc([7, 0]), "malformed"),
        ("missing_field", "PING without its nonce", enc([2]), "malformed"),
        ("float_field", "PING nonce as float64 1.0", bytes.fromhex("9202cb3ff0000000000000"),
         "malformed"),
        ("nonce_too_large", "PING nonce 2^53", enc([2, 2**53]), "malformed"),
        ("hello_version_256", "HELLO version above 255",
         enc([0, 256, NETWORK, a, bytes(64), ""]), "malformed"),
        ("hello_node_id_31", "HELLO node id of 31 bytes",
         enc([0, 1, NETWORK, a[:31], bytes(64), ""]), "malformed"),
        ("hello_node_id_str", "HELLO node id as str, not bin",
         enc([0, 1, NETWORK, "a" * 32, bytes(64), ""]), "malformed"),
        ("hello_network_65", "HELLO network of 65 characters",
         enc([0, 1, "n" * 65, a, bytes(64), ""]), "malformed"),
        ("close_reason_65", "CLOSE reason of 65 characters", enc([1, "r" * 65, ""]),
         "malformed"),
        ("close_detail_257", "CLOSE detail of 257 characters", enc([1, "shutdown", "d" * 257]),
         "malformed"),
        ("ops_eager_int", "OPS eager as 1, not a boolean", enc([4, 1, []]), "malformed"),
        ("ops_op_8193", "an op of 8193 bytes in OPS (ops.md §11 allows 8192)",
         enc([4, False, [[bytes(8193), 1]]]), "malformed"),
        ("ops_not_list", "OPS ops as one bin, not a list", enc([4, False, bytes(3)]),
         "malformed"),
        ("ops_bare_wire", "an op without its hop count (an earlier draft of version 1)",
         enc([4, False, [bytes(3)]]), "malformed"),
        ("ops_hops_256", "an op with hop count 256 (at most 255)",
         enc([4, True, [[bytes(3), 256]]]), "malformed"),
        ("records_16385", "a record of 16385 bytes in RECORDS",
         enc([8, False, [[bytes(16385), 0]]]), "malformed"),
        ("records_no_eager", "RECORDS without its eager flag (an earlier draft of version 1)",
         enc([8, [[bytes(3), 0]]]), "malformed"),
        ("ihave_seq_2_53", "IHAVE ref with seq 2^53", enc([5, [[a, 2**53, a, 1]]]),
         "malformed"),
        ("ihave_short_row", "IHAVE ref of two elements", enc([5, [[a, 1]]]), "malformed"),
        ("ihave_no_hops", "IHAVE ref without its hop count", enc([5, [[a, 1, a]]]),
         "malformed"),
        ("graft_with_hops", "GRAFT refs carry no hop count", enc([6, [[a, 1, a, 1]]]),
         "malformed"),
        ("graft_id_31", "GRAFT ref with a 31-byte id", enc([6, [[a, 1, a[:31]]]]), "malformed"),
        ("sync_open_salt_7", "SYNC_OPEN salt of 7 bytes", enc([9, 1, a, 3, bytes(7)]),
         "malformed"),
        ("sync_open_digest_31", "SYNC_OPEN digest of 31 bytes", enc([9, 1, a[:31], 3, bytes(8)]),
         "malformed"),
        ("sync_buckets_bits_17", "SYNC_BUCKETS bits above 16", enc([11, 1, 17, bytes(4)]),
         "malformed"),
        ("sync_heads_author_32", "SYNC_HEADS rows carry 8-byte author prefixes, not full ids",
         enc([12, 1, 0, [0], [[a, 1, bytes(8), []]], [], []]), "malformed"),
        ("sync_heads_3_proofs", "SYNC_HEADS row with three proof prefixes",
         enc([12, 1, 0, [0], [[a[:8], 1, bytes(8), [bytes(8)] * 3]], [], []]), "malformed"),
        ("sync_heads_bucket_65536", "SYNC_HEADS bucket index 65536: 16 bits number buckets "
         "0 to 65535", enc([12, 1, 16, [65536], [], [], []]), "malformed"),
        ("sync_heads_4097_buckets", "a list of MAX_ITEMS + 1 (4097) entries",
         enc([12, 1, 12, list(range(4097)), [], [], []]), "malformed"),
        ("sync_heads_partial_65536", "SYNC_HEADS partial bucket index 65536",
         enc([12, 1, 16, [0], [], [], [65536]]), "malformed"),
        ("sync_heads_partial_not_list", "SYNC_HEADS partial as one integer, not a list",
         enc([12, 1, 0, [0], [], [], 0]), "malformed"),
        ("sync_heads_5_fields", "SYNC_HEADS without its sixth field, partial (an earlier "
         "draft of version 1)", enc([12, 1, 0, [0], [], []]), "malformed"),
        ("want_author_16", "WANT names an author by 16 bytes (only 8 or 32 are allowed)",
         enc([13, 0, [[a[:16], 1, 1]], [], []]), "malformed"),
        ("want_record_kind_33", "WANT record kind of 33 characters",
         enc([13, 0, [], [], [[a, "k" * 33]]]), "malformed"),
        ("signal_ttl_9", "SIGNAL ttl above 8", enc([14, a, a, 1, 9, "x"]), "malformed"),
        ("ref_row_as_map", "IHAVE ref as a map", enc([5, [{"a": 1}]]), "malformed"),
    ]
    return [_invalid(name, description, data, reason)
            for name, description, data, reason in cases]


# -- HELLO checks (§4.1) --------------------------------------------------------------------

def _session_outcome(me: Identity, inputs: list[bytes]) -> dict[str, Any]:
    """Feed `inputs` to a fresh session of `me`; what state it ends in, and what it sent."""
    session = Session(me, NETWORK, BINDING, T0, SessionConfig(), nonce=1)
    sent = session.take_output()
    assert len(sent) == 1 and isinstance(frames.decode(sent[0]), frames.Hello)
    reason: str | None = None
    try:
        for data in inputs:
            session.receive(data, T0)
    except SessionClosed as closed:
        reason = closed.reason
    replies = [frames.decode(d) for d in session.take_output()]
    sent = [NAME_OF[type(f)] for f in replies]
    if reason is None:
        assert session.state is State.OPEN and session.peer is not None
        return {"state": "open", "close_reason": None, "peer": h(session.peer), "sent": sent}
    assert session.state is State.CLOSED
    assert all(isinstance(f, frames.Close) and f.reason == reason for f in replies)
    return {"state": "closed", "close_reason": reason, "peer": None, "sent": sent}


def _hello_checks() -> list[dict[str, Any]]:
    me = CAROL
    ping = frames.encode(frames.Ping(1))
    rows: list[tuple[str, str, list[bytes]]] = [
        ("ok", "bob's HELLO signed over this connection's binding value",
         [frames.encode(_hello(BOB))]),
        ("ok_then_ping", "after a good HELLO any other frame is fine",
         [frames.encode(_hello(BOB)), ping]),
        ("unsupported_version", "version 2", [frames.encode(_hello(BOB, version=2))]),
        ("wrong_network", "network othernet", [frames.encode(_hello(BOB, network=OTHER_NETWORK))]),
        ("bad_binding_other_connection", "signed over another connection's binding value",
         [frames.encode(_hello(BOB, binding=OTHER_BINDING))]),
        ("bad_binding_other_key", "claims bob's id, signed by alice",
         [frames.encode(_hello(ALICE, node_id=BOB.public_key))]),
        ("self_connection", "our own HELLO reflected back to us", [frames.encode(_hello(me))]),
        ("version_checked_first", "version 2 and network othernet: the version is reported",
         [frames.encode(_hello(BOB, version=2, network=OTHER_NETWORK))]),
        ("network_before_binding", "network othernet and a bad binding: the network is reported",
         [frames.encode(_hello(BOB, network=OTHER_NETWORK, binding=OTHER_BINDING))]),
        ("binding_before_self", "our own id with a bad binding: the binding is reported",
         [frames.encode(_hello(me, binding=OTHER_BINDING))]),
        ("frame_before_hello", "a PING before any HELLO", [ping]),
        ("second_hello", "a HELLO after the handshake",
         [frames.encode(_hello(BOB)), frames.encode(_hello(BOB))]),
        ("malformed_frame", "an undecodable frame during the handshake", [b"\xc1"]),
        ("close_before_hello", "the peer closes first: the session closes with the peer's "
         "reason and sends nothing back", [frames.encode(frames.Close("too_many_peers", ""))]),
    ]
    return [{"name": name, "description": description, "inputs_hex": [h(d) for d in inputs],
             **_session_outcome(me, inputs)} for name, description, inputs in rows]


# -- one anti-entropy round (§6) ------------------------------------------------------------

SALT = bytes.fromhex("0123456789abcdef")
RECORD_NOW = T0 + 10 * MINUTE


def _round_material() -> tuple[list[Op], list[Op], list[Record], list[Record]]:
    """Ops and records of two replicas, A (the initiator) and B, differing a little."""
    ids = {i: who(i) for i in range(1, 12)}
    w = {i: Writer(ids[i]) for i in ids}
    t = iter(range(T0, T0 + 10_000 * MINUTE, MINUTE))
    common: list[Op] = []
    a_only: list[Op] = []
    b_only: list[Op] = []
    for i in (1, 2, 3, 4, 5, 7, 8, 9):
        common.append(w[i].write(Register(f"n{i}"), next(t)))
    common.append(w[1].write(Claim(202602), next(t)))
    common.append(w[2].write(Post("social", "hello", 3, None), next(t)))
    common.append(w[3].write(Post("billboard", "tools to lend", 5, None), next(t)))
    common.append(w[7].write(Post("media", "photo", 1, None), next(t)))
    a_only.append(w[1].write(Transfer(BOB.public_key, 1_000, "tea"), next(t)))  # alice#3
    b_only.append(w[3].write(Post("social", "carol again", 2, None), next(t)))  # carol#3
    fork_a = w[6].after(None, Register("six"), next(t))
    fork_b = w[6].after(None, Register("six, again"), next(t))
    a_only.extend([fork_a, fork_b])  # A holds both: author 6 forked at seq 1
    b_only.append(fork_a)  # B holds one of them as its seq 1
    x9 = w[9].after(w[9].head, Post("social", "nine: version x", 1, None), next(t))
    y9 = w[9].after(w[9].head, Post("social", "nine: version y", 1, None), next(t))
    a_only.append(x9)
    b_only.append(y9)
    a_only.append(w[11].write(Register("eleven"), next(t)))
    b_only.append(w[10].write(Register("ten"), next(t)))
    info1 = create_record(ids[1], network=NETWORK, version=T0, ttl_ms=60 * MINUTE,
                          body=NodeInfo("alice", "liberation-node/0.1.0", (), (), ()))
    info8 = create_record(ids[8], network=NETWORK, version=T0, ttl_ms=60 * MINUTE,
                          body=NodeInfo("eight", "liberation-node/0.1.0", (), (), ()))
    links2 = create_record(ids[2], network=NETWORK, version=T0, ttl_ms=60 * MINUTE,
                           body=NodeLinks(((ids[1].public_key, 20),)))
    links2b = create_record(ids[2], network=NETWORK, version=T0 + MINUTE, ttl_ms=60 * MINUTE,
                            body=NodeLinks(((ids[1].public_key, 25), (ids[3].public_key, 40))))
    return common + a_only, common + b_only, [info1, info8, links2], [info8, links2b]


def _replica(ops: list[Op], records: list[Record]) -> Replica:
    replica = Replica(NETWORK)
    for op in ops:
        assert replica.ingest(op.wire).outcome in ("applied", "fork"), op.seq
    for record in records:
        assert replica.ingest_record(record.wire, RECORD_NOW).outcome == "applied"
    return replica


def _buckets_detail(replica: Replica, bits: int) -> list[dict[str, Any]]:
    """What each bucket hashes (§6.3): feed entries, then record ids, of its authors."""
    rows = []
    hashes = reconcile.bucket_hashes(replica, bits, SALT)  # checked against the spec's rule
    n = reconcile.BUCKET_HASH_BYTES
    for b in range(1 << bits):
        authors = sorted(a for a in replica.feeds if reconcile.bucket_of(a, bits) == b)
        keys = sorted(k for k in replica.records if reconcile.bucket_of(k[0], bits) == b)
        data = b"".join(replica.feeds[a].entry(a) for a in authors)
        data += b"".join(replica.records[k].id for k in keys)
        digest = hashlib.blake2b(data, digest_size=n, salt=SALT + bytes(8)).digest()
        assert digest == hashes[b * n : (b + 1) * n]
        rows.append({"bucket": b, "authors": [h(a) for a in authors],
                     "records": [[h(a), k] for a, k in keys], "input_hex": h(data),
                     "hash": h(digest)})
    return rows


def _replica_json(ops: list[Op], records: list[Record], replica: Replica) -> dict[str, Any]:
    return {"ops": [h(op.wire) for op in ops], "records": [h(r.wire) for r in records],
            "authors": reconcile.author_count(replica), "digest": h(replica.digest()),
            "frontier": {h(a): s for a, s in sorted(replica.frontier().items())},
            "forks": {h(a): s for a, s, _ in sorted(replica.forks())}}


def _plan_json(plan: reconcile.Plan) -> dict[str, Any]:
    return {"send_ranges": _json(plan.send_ranges), "send_proofs": _json(plan.send_proofs),
            "send_records": _json(plan.send_records), "want_ranges": _json(plan.want_ranges),
            "want_forks": _json(plan.want_forks), "want_records": _json(plan.want_records)}


def _round() -> dict[str, Any]:
    ops_a, ops_b, recs_a, recs_b = _round_material()
    a, b = _replica(ops_a, recs_a), _replica(ops_b, recs_b)
    round_id = 1
    sync_open = frames.SyncOpen(round_id, a.digest(), reconcile.author_count(a), SALT)
    bits = reconcile.choose_bits(max(sync_open.authors, reconcile.author_count(b)))
    buckets_b = frames.SyncBuckets(round_id, bits, reconcile.bucket_hashes(b, bits, SALT))
    differing = reconcile.differing(reconcile.bucket_hashes(a, bits, SALT), buckets_b.hashes)
    heads_a = reconcile.heads(a, round_id, bits, differing)
    plan_b = reconcile.compare(b, heads_a)
    want = frames.Want(round_id, tuple(plan_b.want_ranges), tuple(plan_b.want_forks),
                       tuple(plan_b.want_records))
    # The same buckets seen from the other side: what A would do with B's heads.
    heads_b = reconcile.heads(b, round_id, bits, differing)
    content = {
        "description": "Replica A (the initiator) and replica B differ in buckets 1-3: A "
                       "lacks carol#3 and author 10, B lacks alice#3 and author 11, A holds "
                       "two seq-1 ops of author 6 (a fork), B one of them, the two hold "
                       "different ops at author 9's seq 2, and their records differ. Build "
                       "each replica by ingesting 'ops' in order (no clock) and 'records' at "
                       "'now'.",
        "now": RECORD_NOW,
        "salt": h(SALT),
        "a": _replica_json(ops_a, recs_a, a),
        "b": _replica_json(ops_b, recs_b, b),
        "bits": bits,
        "buckets_a": _buckets_detail(a, bits),
        "buckets_b": _buckets_detail(b, bits),
        "differing": differing,
        "frames": [
            {"from": "a", **frame_json(sync_open)},
            {"from": "b", **frame_json(buckets_b)},
            {"from": "a", **frame_json(heads_a)},
            {"from": "b", **frame_json(want)},
        ],
        "plan_b": _plan_json(plan_b),
        "heads_b": frame_json(heads_b),
        "plan_a": _plan_json(reconcile.compare(a, heads_b)),
    }
    # Once each side holds what the other has, the digests agree (§6.6).
    for replica, ops, recs in ((a, ops_b, recs_b), (b, ops_a, recs_a)):
        for op in ops:
            replica.ingest(op.wire)
        for record in recs:
            replica.ingest_record(record.wire, RECORD_NOW)
    assert a.digest() == b.digest()
    content["digest_after"] = h(a.digest())
    return content


def _partial() -> dict[str, Any]:
    """The round's replicas again, with A's SYNC_HEADS covering buckets 1 and 2 in part."""
    ops_a, ops_b, recs_a, recs_b = _round_material()
    a, b = _replica(ops_a, recs_a), _replica(ops_b, recs_b)
    bits = reconcile.choose_bits(max(reconcile.author_count(a), reconcile.author_count(b)))
    differing = reconcile.differing(reconcile.bucket_hashes(a, bits, SALT),
                                    reconcile.bucket_hashes(b, bits, SALT))
    full = reconcile.heads(a, 2, bits, differing)
    first, second = differing[0], differing[1]
    held_by_b = {x[:8] for x in b.feeds}

    def bucket(prefix: bytes) -> int:
        return reconcile.bucket_of(prefix + bytes(24), bits)

    # In the first bucket A lists only the feeds B also holds; in the second, its feeds
    # without fork proofs and only its node.info record.
    rows = tuple(r for r in full.heads
                 if not (bucket(r[0]) == first and r[0] not in held_by_b)
                 and not (bucket(r[0]) == second and r[3]))
    records = tuple(r for r in full.records if bucket(r[0]) != second or r[1] == "node.info")
    heads = frames.SyncHeads(2, bits, full.buckets, rows, records, (first, second))
    plan = reconcile.compare(b, heads)
    omitted_feeds = {r[0] for r in full.heads} - {r[0] for r in rows}
    b_unlisted = {x[:8] for x in b.feeds if bucket(x[:8]) in (first, second)} - {
        r[0] for r in rows}
    named = {x[0][:8] for x in plan.send_ranges + plan.want_ranges} | {
        x[:8] for x in plan.send_proofs + plan.want_forks}
    assert omitted_feeds and b_unlisted and not named & (omitted_feeds | b_unlisted)
    assert not any(bucket(k[0][:8]) == second and k[1] == "node.links"
                   for k in plan.send_records + plan.want_records)
    return {
        "description": f"Replicas A and B of 'round', a later round (salt {h(SALT)}): A's "
                       f"SYNC_HEADS covers buckets {list(full.buckets)} and marks "
                       f"{first} and {second} partial. In bucket {first} it lists only the "
                       f"feeds B also holds; in bucket {second} only its feeds without fork "
                       "proofs and only its node.info record. B compares only what A "
                       "listed there: its own feed that A did not list, A's feeds and "
                       "records left out, and its node.links record are in no part of "
                       "the plan, while bucket 3 is compared in full.",
        "bits": bits,
        "heads": frame_json(heads),
        "plan_b": _plan_json(plan),
    }


WINDOW_AUTHORS = 1300
WINDOW_SALT = bytes.fromhex("c0ffee0012345678")


def _window_author(i: int) -> Identity:
    return Identity.from_seed(i.to_bytes(2, "big") * 16)


def _window() -> dict[str, Any]:
    """Which rows go into SYNC_HEADS when one bucket is too big for the frame (§6.3)."""
    replica = Replica(NETWORK)
    for i in range(1, WINDOW_AUTHORS + 1):
        op = Writer(_window_author(i)).write(Register(f"n{i}"), T0 + i)
        assert replica.ingest(op.wire).outcome == "applied"
    rotate = int.from_bytes(WINDOW_SALT[:4], "big")
    heads = reconcile.heads(replica, 5, 0, [0], rotate=rotate)
    prefixes = sorted(a[:8] for a in replica.feeds)
    room = (reconcile.HEADS_BUDGET_BYTES // 2) // reconcile.HEAD_ROW_BYTES
    start = rotate % len(prefixes)
    window = [prefixes[(start + k) % len(prefixes)] for k in range(room)]
    assert heads.partial == (0,) and heads.buckets == (0,) and not heads.records
    assert [r[0] for r in heads.heads] == sorted(window)  # the window, in ascending order
    assert start + room > len(prefixes)  # it wraps around: both ends of the bucket
    data = frames.encode(heads)
    return {
        "description": f"One bucket holding {WINDOW_AUTHORS} feeds (bits 0, so every feed is "
                       "in bucket 0; how rows are picked does not depend on bits). Its rows "
                       "cost more than HEADS_BUDGET, so SYNC_HEADS covers it in part: of the "
                       "rows sorted by author prefix ('prefixes'), the cyclic window of "
                       "'room_feeds' rows starting at index 'start' = 'rotate' mod n, where "
                       "'rotate' is the round salt's first 4 bytes as a big-endian integer. "
                       "The frame lists the window's rows in ascending order. Replica: "
                       "author i (1..n) has seed = i as 2 big-endian bytes, repeated 16 times, "
                       f"and one op, register 'n<i>' at timestamp {T0} + i, seq 1.",
        "authors": WINDOW_AUTHORS,
        "register_timestamp_base": T0,
        "salt": h(WINDOW_SALT),
        "rotate": rotate,
        "start": start,
        "room_feeds": room,
        "room_records": (reconcile.HEADS_BUDGET_BYTES // 2) // reconcile.RECORD_ROW_BYTES,
        "prefixes": [h(p) for p in prefixes],
        "frame": {"type": "SYNC_HEADS", "size": len(data), "hex": h(data)},
    }


def _choose_bits() -> list[dict[str, int]]:
    return [{"authors": n, "bits": reconcile.choose_bits(n)}
            for n in (0, 1, 4, 5, 8, 9, 1000, 16384, 16385, 1_000_000)]


def _bucket_of() -> list[dict[str, Any]]:
    author = ALICE.public_key  # 8a88...
    return [{"author": h(author), "bits": bits, "bucket": reconcile.bucket_of(author, bits)}
            for bits in (0, 1, 2, 8, 12, 16)]


def build() -> dict[str, Any]:
    hello = _hello(ALICE)
    signed = HELLO_DOMAIN + BINDING
    return {
        "description": "Session frames (sync.md §2-§3): 'types' gives each frame type's code "
                       "and fields; 'cases' are valid frames (fields and exact bytes) and "
                       "refused ones with the decoder's verdict. 'hello' shows the signed "
                       "bytes of a HELLO; 'hello_checks' are frames a session receives in "
                       "order, with the resulting state and close reason (§4). 'round' is one "
                       "anti-entropy round between two small replicas (§6): bucket hashes, "
                       "the differing buckets, SYNC_HEADS, the comparison and the WANT. "
                       "'partial' is a SYNC_HEADS covering buckets in part and the "
                       "comparison it gives (§6.3, §6.4); 'window' shows which rows a "
                       "sender puts in a bucket too big for one frame (§6.3).",
        "spec": "protocols/sync.md §2-§4, §6",
        "constants": {"max_frame_bytes": frames.MAX_FRAME_BYTES,
                      "target_frame_bytes": frames.TARGET_FRAME_BYTES,
                      "max_items": frames.MAX_ITEMS, "hello_domain_hex": h(HELLO_DOMAIN),
                      "bucket_hash_bytes": reconcile.BUCKET_HASH_BYTES,
                      "prefix_bytes": reconcile.PREFIX_BYTES,
                      "feeds_per_bucket": reconcile.FEEDS_PER_BUCKET,
                      "max_bits": reconcile.MAX_BITS, "max_refs": frames.MAX_REFS,
                      "heads_budget_bytes": reconcile.HEADS_BUDGET_BYTES,
                      "head_row_bytes": reconcile.HEAD_ROW_BYTES,
                      "record_row_bytes": reconcile.RECORD_ROW_BYTES},
        "types": {name: {"code": code, "fields": [[f, t] for f, t in TYPES[name][1]]}
                  for code, name in enumerate(TYPES)},
        "cases": _valid_cases() + _invalid_cases(),
        "hello": {
            "seed": h(ALICE.seed), "node_id": h(ALICE.public_key), "network": NETWORK,
            "binding_hex": h(BINDING), "signed_hex": h(signed),
            "signature": h(hello.binding_sig), "frame_hex": h(frames.encode(hello)),
        },
        "hello_checks": {"local_seed": h(CAROL.seed), "network": NETWORK, "version": 1,
                         "binding_hex": h(BINDING), "cases": _hello_checks()},
        "choose_bits": _choose_bits(),
        "bucket_of": _bucket_of(),
        "round": _round(),
        "partial": _partial(),
        "window": _window(),
    }
