#!/usr/bin/env python3
"""Data channel benchmark on loopback (issue #4): raw aiortc, then the same through `Link`.

Two peer connections in one process on 127.0.0.1 (no STUN server, no mDNS),
signaling by a direct call. Measures, for plain aiortc and for
liberation_node.transport (WebRtcTransport/Link), each --repeat times, the median of:

  open      time from creating the dialing side to its data channel being open
  16 KiB    throughput of --mib MiB in 16 KiB messages, sending while the
            buffered amount is at most 1 MiB and waiting for "bufferedamountlow"
            (256 KiB) otherwise, as Link.wait_writable does
  200 B     rate of --messages messages of 200 bytes, same backpressure
            (each stream on a connection of its own)

MB/s are 10^6 bytes per second, counted when the last byte has arrived. The
event loop is uvloop by default, as in the daemon (liberation_node/daemon.py);
--loop asyncio measures the standard loop, about half as fast here.
The raw side uses only aiortc plus the loopback restriction of ICE
(liberation_node/transport/_ice.py), which this machine's network safety needs.

    .venv/test/bin/python scripts/bench_datachannel.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection

from liberation_node.transport import Link, TransportConfig, WebRtcTransport
from liberation_node.transport._ice import restrict_host_addresses

ADDRESSES = ("127.0.0.1",)
CONFIG = TransportConfig(ice_addresses=ADDRESSES)
HIGH, LOW = CONFIG.high_water, CONFIG.low_water


class Sink:
    """Counts what arrives and wakes the waiter once `target` bytes or messages are in."""

    def __init__(self) -> None:
        self.bytes = self.messages = 0
        self.target: tuple[int, int] = (-1, -1)
        self.done: asyncio.Future[float] | None = None

    def expect(self, nbytes: int, messages: int) -> asyncio.Future[float]:
        self.bytes = self.messages = 0
        self.target = (nbytes, messages)
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def __call__(self, data: bytes) -> None:
        self.bytes += len(data)
        self.messages += 1
        if (self.bytes, self.messages) == self.target and self.done and not self.done.done():
            self.done.set_result(time.perf_counter())


# -- raw aiortc ---------------------------------------------------------------------------


class RawPair:
    def __init__(self) -> None:
        self.sink = Sink()
        self.pcs: list[RTCPeerConnection] = []
        self.channel: RTCDataChannel | None = None

    async def open(self) -> float:
        start = time.perf_counter()
        a = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN server
        b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs = [a, b]
        channel = a.createDataChannel("bench", ordered=True)
        opened = asyncio.get_running_loop().create_future()
        channel.on("open", lambda: opened.set_result(time.perf_counter()))
        b.on("datachannel", lambda ch: ch.on("message", self.sink))
        restrict_host_addresses(a, ADDRESSES)
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        restrict_host_addresses(b, ADDRESSES)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        self.channel = channel
        return float(await opened) - start

    async def send(self, data: bytes) -> None:
        channel = self.channel
        assert channel is not None
        channel.send(data)
        if channel.bufferedAmount > HIGH:
            drained = asyncio.get_running_loop().create_future()
            channel.bufferedAmountLowThreshold = LOW
            channel.once("bufferedamountlow", lambda: drained.set_result(None))
            await drained

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


# -- through Link -------------------------------------------------------------------------


class LinkPair:
    def __init__(self) -> None:
        self.sink = Sink()
        self.link: Link | None = None

        def ignore(_: Link) -> None:
            pass

        self.a = WebRtcTransport(CONFIG, ignore, lambda link, data: None, ignore)
        self.b = WebRtcTransport(CONFIG, ignore, lambda link, data: self.sink(data), ignore)

    async def open(self) -> float:
        start = time.perf_counter()
        self.link = await self.a.dial(self.b.answer)
        return time.perf_counter() - start

    async def send(self, data: bytes) -> None:
        link = self.link
        assert link is not None
        link.send(data)
        if link.congested:
            await link.wait_writable()

    async def close(self) -> None:
        await self.a.close()
        await self.b.close()


# -- measurements -------------------------------------------------------------------------

Pair = RawPair | LinkPair


async def stream(pair: Pair, size: int, count: int) -> float:
    """Seconds from the first send until all `count` messages of `size` bytes arrived."""
    done = pair.sink.expect(size * count, count)
    data = bytes(size)
    start = time.perf_counter()
    for _ in range(count):
        await pair.send(data)
    return await asyncio.wait_for(done, 300) - start


async def on_fresh_pair(make: Callable[[], Pair], size: int, count: int) -> tuple[float, float]:
    """(open seconds, stream seconds) on a new pair of peer connections."""
    pair = make()
    try:
        opened = await pair.open()
        return opened, await stream(pair, size, count)
    finally:
        await pair.close()


async def measure(make: Callable[[], Pair], mib: int, messages: int) -> dict[str, float]:
    # Each stream gets its own connection: on one that has just carried 32 MiB,
    # aiortc delivers 200 B messages about 40% slower than on a fresh one.
    frames = mib * 1024 * 1024 // (16 * 1024)
    open_big, big = await on_fresh_pair(make, 16 * 1024, frames)
    open_small, small = await on_fresh_pair(make, 200, messages)
    return {"open_ms": (open_big + open_small) / 2 * 1000,
            "mb_per_s": frames * 16 * 1024 / big / 1e6, "msg_per_s": messages / small}


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    raws, links = [], []
    for _ in range(args.repeat):  # interleaved, so that drift in the machine's load is shared
        raws.append(await measure(RawPair, args.mib, args.messages))
        links.append(await measure(LinkPair, args.mib, args.messages))
    raw, link = median(raws), median(links)
    return {"loop": args.loop, "raw": raw, "link": link,
            "ratio": {key: link[key] / raw[key] for key in raw}}


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"loopback data channel, {args.loop} event loop, median of {args.repeat} runs "
          f"({args.mib} MiB in 16 KiB frames, {args.messages} x 200 B)")
    print(f"{'':18}{'raw aiortc':>12}{'Link':>12}{'Link/raw':>10}")
    rows = [("open (ms)", "open_ms", "{:.1f}"), ("16 KiB (MB/s)", "mb_per_s", "{:.1f}"),
            ("200 B (msg/s)", "msg_per_s", "{:,.0f}")]
    for label, key, fmt in rows:
        print(f"{label:18}{fmt.format(result['raw'][key]):>12}"
              f"{fmt.format(result['link'][key]):>12}{result['ratio'][key]:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=32, help="MiB sent in 16 KiB frames")
    parser.add_argument("--messages", type=int, default=20_000, help="200-byte messages")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (median)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop (the daemon runs on uvloop where available)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args()
    if arguments.loop == "uvloop":
        import uvloop

        outcome = uvloop.run(main(arguments))
    else:
        outcome = asyncio.run(main(arguments))
    if arguments.json:
        print(json.dumps(outcome, indent=2))
    else:
        report(outcome, arguments)
