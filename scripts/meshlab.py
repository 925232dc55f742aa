#!/usr/bin/env python3
"""meshlab: real hosts for real daemons, made of Linux network namespaces (needs root).

A lab is hosts on one or more LANs. Each LAN is a bridge inside the lab's own hub
namespace; each host is a namespace joined to its LAN's bridge by a veth pair
(`eth0` on the host side). Nothing is attached to the machine's own interfaces:
traffic stays inside the lab. Addresses come from 198.18.0.0/15 (RFC 2544, for test
networks): LAN L is 198.18.L.0/24, its hosts .10 and up, its router .1. A router
host joins two LANs and forwards between them (unicast only: multicast, hence mDNS,
does not cross). Every host runs a real `liberation-node run` under `ip netns exec`,
no STUN server (the default, an empty list), ICE restricted to the host's address.

Faults are nftables rules on the bridges in the hub namespace: a partition drops
frames between two groups of hosts, loss drops a percentage of a host's frames
(`numgen random`; this kernel has no netem).

Everything is torn down by `Lab.close()` (also on an exception, Ctrl-C or SIGTERM
in the command below): daemons are stopped by PID, then the namespaces deleted.
Each lab's names carry the creating process's PID and a random tag, so parallel
labs never collide, and `cleanup` removes only labs whose creator is gone.

Tests and benchmarks import it (`from scripts.meshlab import Lab`); by hand:

    sudo .venv/test/bin/python scripts/meshlab.py up --hosts 5 --ops 3
    sudo .venv/test/bin/python scripts/meshlab.py up --lans 2 --hosts 3 --partition h2 --hold 8
    sudo .venv/test/bin/python scripts/meshlab.py cleanup
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also run as a script
from scripts.labdaemon import (  # re-exported: tests import them from here
    CONTROL_PORT,
    PEER_PORT,
    Daemon,
    LabError,
    connected,
    converged,
    entered,
    sh,
    terminate,
    unavailable,
    wait_until,
)

__all__ = ["CONTROL_PORT", "PEER_PORT", "Daemon", "Host", "Lab", "LabError", "Lan",
           "cleanup_stale", "connected", "converged", "entered", "unavailable", "wait_until"]

PREFIX = "lnlab"
NETWORK = "lab"
_STALE = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]{{4}}-")
CLONE_NEWNET = 0x40000000


# -- the lab --------------------------------------------------------------------------------


@dataclass
class Lan:
    index: int
    bridge: str
    router: str | None = None  # the router's address on this LAN

    @property
    def prefix(self) -> str:
        return f"198.18.{self.index}"


@dataclass
class Host:
    lab: Lab
    name: str
    ns: str
    lan: Lan
    address: str
    ports: list[str] = field(default_factory=list)  # its veth ends in the hub namespace
    addresses: list[str] = field(default_factory=list)  # every address, one per LAN
    daemon: Daemon | None = None
    router: bool = False
    rejecting: bool = False  # has output rules refusing TCP to cut-off hosts

    def run(self, *args: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", self.ns, *args, check=check)

    def popen(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """A process in this host; the lab kills it (by PID) when it closes."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *args], **kw)
        self.lab.processes.append(proc)
        return proc


class Lab:
    """Hosts as namespaces on bridges; see the module docstring. Use as a context
    manager, or call close()."""

    def __init__(self, workdir: Path | None = None, *, python: str = sys.executable,
                 ipv6: bool = False) -> None:
        reason = unavailable()
        if reason:
            raise LabError(reason)
        self.tag = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.hub = f"{self.tag}-hub"
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.python = python
        self.ipv6 = ipv6
        self.lans: list[Lan] = []
        self.hosts: list[Host] = []
        self.processes: list[subprocess.Popen[Any]] = []
        self.namespaces: list[str] = []
        self._ports = 0
        self._cuts: dict[tuple[str, str], bool] = {}  # port pairs cut both ways -> reject TCP
        self._loss: dict[str, int] = {}  # port -> percent dropped
        self._closed = False
        self._add_namespace(self.hub)
        self._apply_rules()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_namespace(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        settings = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
        sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings)

    # -- topology -----------------------------------------------------------------------

    def add_lan(self) -> Lan:
        lan = Lan(len(self.lans) + 1, f"br{len(self.lans) + 1}")
        sh("ip", "-n", self.hub, "link", "add", lan.bridge, "type", "bridge",
           "mcast_snooping", "0")
        sh("ip", "-n", self.hub, "link", "set", lan.bridge, "up")
        self.lans.append(lan)
        return lan

    def _plug(self, host: Host, lan: Lan, ifname: str, address: str) -> None:
        self._ports += 1
        port = f"v{self._ports}"
        sh("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", ifname,
           "netns", host.ns)
        sh("ip", "-n", self.hub, "link", "set", port, "master", lan.bridge, "up")
        sh("ip", "-n", host.ns, "addr", "add", f"{address}/24", "dev", ifname)
        if self.ipv6:
            sh("ip", "-n", host.ns, "addr", "add", f"{self.v6(address)}/64", "dev", ifname,
               "nodad")
        sh("ip", "-n", host.ns, "link", "set", ifname, "up")
        host.ports.append(port)
        host.addresses.append(address)

    @staticmethod
    def v6(address: str) -> str:
        """The host's IPv6 address (ULA) matching an IPv4 one of the lab."""
        _, _, lan, last = address.split(".")
        return f"fd77:0:0:{lan}::{last}"

    def add_host(self, lan: Lan | None = None, name: str | None = None) -> Host:
        if lan is None:
            lan = self.lans[0] if self.lans else self.add_lan()
        name = name or f"h{sum(1 for h in self.hosts if not h.router) + 1}"
        on_lan = sum(1 for h in self.hosts if h.lan is lan and not h.router)
        host = Host(self, name, f"{self.tag}-{name}", lan, f"{lan.prefix}.{10 + on_lan}")
        self._add_namespace(host.ns)
        self.hosts.append(host)
        self._plug(host, lan, "eth0", host.address)
        if lan.router:
            sh("ip", "-n", host.ns, "route", "add", "default", "via", lan.router)
            if self.ipv6:
                sh("ip", "-n", host.ns, "-6", "route", "add", "default", "via",
                   self.v6(lan.router))
        return host

    def add_router(self, lans: Iterable[Lan], name: str = "router") -> Host:
        """A host on several LANs that forwards between them (add it before the hosts,
        which then get it as their default route)."""
        lans = list(lans)
        router = Host(self, name, f"{self.tag}-{name}", lans[0], f"{lans[0].prefix}.1",
                      router=True)
        self._add_namespace(router.ns)
        self.hosts.append(router)
        for i, lan in enumerate(lans):
            lan.router = f"{lan.prefix}.1"
            self._plug(router, lan, f"eth{i}", lan.router)
        router.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                   "net.ipv6.conf.all.forwarding=1")
        return router

    # -- daemons ------------------------------------------------------------------------

    def start(self, host: Host, *, network: str = NETWORK, bootstrap: Iterable[str] = (),
              mdns: bool = True, extra: Iterable[str] = (), wait: bool = True) -> Daemon:
        daemon = Daemon(host, network=network, bootstrap=list(bootstrap), mdns=mdns,
                        extra=list(extra))
        host.daemon = daemon
        daemon.launch()
        if wait:
            daemon.wait_up()
        return daemon

    def start_all(self, hosts: Iterable[Host], *,
                  extra_for: Callable[[Host], list[str]] | None = None, **kw: Any
                  ) -> list[Daemon]:
        """Launch every daemon at once, then wait for each to be up. `extra_for(host)`
        gives per-host extra arguments."""
        daemons = [self.start(h, wait=False, **kw,
                              **({"extra": extra_for(h)} if extra_for else {}))
                   for h in hosts]
        for d in daemons:
            d.wait_up()
        return daemons

    @property
    def daemons(self) -> list[Daemon]:
        return [h.daemon for h in self.hosts if h.daemon is not None]

    # -- faults ---------------------------------------------------------------------------

    def partition(self, side: Iterable[Host], *, reject: bool = False) -> None:
        """Cut `side` off from every other host (each side still talks within itself).
        Frames are dropped (a silent network: connection attempts hang until they time
        out); with `reject`, TCP is refused with a reset instead (a connect fails at
        once, as when a host is up but cut off by a router that says so)."""
        inside = {p for h in side for p in h.ports}
        outside = {p for h in self.hosts for p in h.ports} - inside
        self._cuts.update({(a, b): reject for a in inside for b in outside})
        self._apply_rules()

    def heal(self) -> None:
        """Undo every partition and loss."""
        self._cuts.clear()
        self._loss.clear()
        self._apply_rules()

    def loss(self, host: Host, percent: int) -> None:
        """Drop `percent` % of the frames to and from `host`, at random."""
        if not 0 <= percent <= 100:
            raise ValueError("loss is a percentage")
        for port in host.ports:
            self._loss[port] = percent
        self._apply_rules()

    def _apply_rules(self) -> None:
        rules = []
        for a, b in sorted(self._cuts):
            rules += [f'iifname "{a}" oifname "{b}" drop', f'iifname "{b}" oifname "{a}" drop']
        for port, pct in sorted(self._loss.items()):
            if pct:
                rules += [f'iifname "{port}" numgen random mod 100 < {pct} drop',
                          f'oifname "{port}" numgen random mod 100 < {pct} drop']
        _nft(self.hub, "bridge", "forward", rules)
        # This kernel's bridge cannot answer with a TCP reset, so a rejecting cut is
        # also a rule in each host's own output path: its connects fail at once.
        owner = {p: h for h in self.hosts for p in h.ports}
        for host in self.hosts:
            refused = sorted({a for (x, y), reject in self._cuts.items() if reject
                              for mine, theirs in ((x, y), (y, x)) if mine in host.ports
                              for a in owner[theirs].addresses})
            v6 = [self.v6(a) for a in refused] if self.ipv6 else []
            host_rules = [f"ip daddr {{ {', '.join(refused)} }} meta l4proto tcp "
                          "reject with tcp reset"] if refused else []
            host_rules += [f"ip6 daddr {{ {', '.join(v6)} }} meta l4proto tcp "
                           "reject with tcp reset"] if v6 else []
            if host_rules or host.rejecting:
                _nft(host.ns, "inet", "output", host_rules)
                host.rejecting = bool(host_rules)

    # -- reporting ----------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        return {d.host.name: d.status() for d in self.daemons if d.running}

    def summary(self) -> str:
        statuses = self.statuses()
        names = {s["node_id"]: n for n, s in statuses.items()}
        digests = {s["digest"] for s in statuses.values()}
        lines = [f"{'host':<8} {'address':<14} {'network':<8} {'id':<12} {'ops':>5} "
                 f"{'digest':<12} peers"]
        for d in self.daemons:
            s = statuses.get(d.host.name)
            if s is None:
                lines.append(f"{d.host.name:<8} {d.host.address:<14} (not running)")
                continue
            peers = sorted(names.get(p["id"], p["id"][:10]) for p in s["peers"])
            lines.append(f"{d.host.name:<8} {d.host.address:<14} {s['network']:<8} "
                         f"{s['node_id'][:10]:<12} {s['ops']:>5} {s['digest'][:10]:<12} "
                         f"{' '.join(peers) or '-'}")
        agree = "all equal" if len(digests) == 1 else f"{len(digests)} different"
        lines.append(f"{len(statuses)} running; digests {agree}")
        return "\n".join(lines)

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), delete every namespace. Safe to
        call twice and after a failure half-way through building."""
        if self._closed:
            return
        self._closed = True
        procs = [d.proc for d in self.daemons if d.proc is not None] + self.processes
        terminate(procs, grace=3.0)
        for ns in reversed(self.namespaces):
            _delete_namespace(ns)
        if self._own_workdir and not os.environ.get("MESHLAB_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


def _nft(ns: str, family: str, hook: str, rules: list[str]) -> None:
    """Replace the lab's table in `ns` with one chain holding `rules`, atomically."""
    body = "".join(f"    {r}\n" for r in rules)
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=(
        f"table {family} meshlab\ndelete table {family} meshlab\n"
        f"table {family} meshlab {{\n  chain {hook} {{\n"
        f"    type filter hook {hook} priority 0; policy accept;\n{body}  }}\n}}\n"))


def _delete_namespace(ns: str) -> None:
    """Kill what still runs in `ns` (processes this lab started there), then delete it."""
    for pid in sh("ip", "netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "del", ns, check=False)


def _alive(pid: int) -> bool:
    """A running process (a zombie, killed but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cleanup_stale() -> list[str]:
    """Delete the namespaces of labs whose creating process is gone."""
    removed = []
    for line in sh("ip", "netns", "list").splitlines():
        ns = line.split(" ", 1)[0]
        match = _STALE.match(ns)
        if match and not _alive(int(match.group(1))):
            _delete_namespace(ns)
            removed.append(ns)
    return removed


# -- the command -------------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> None:
    with Lab(ipv6=args.ipv6) as lab:
        print(f"lab {lab.tag} in {lab.workdir}", flush=True)
        lans = [lab.add_lan() for _ in range(args.lans)]
        if args.lans > 1:
            lab.add_router(lans)
        hosts = [lab.add_host(lans[i % args.lans]) for i in range(args.hosts * args.lans)]
        first = next(h for h in hosts if h.lan is lans[0])
        daemons = [lab.start(first, mdns=not args.no_mdns)]
        for h in hosts:  # mDNS stays on its LAN: other LANs need the first host's URL
            if h is not first:
                across = args.bootstrap or args.no_mdns or h.lan is not first.lan
                daemons.append(lab.start(h, mdns=not args.no_mdns, wait=False,
                                         bootstrap=[daemons[0].url] if across else []))
        for d in daemons:
            d.wait_up()
        t0 = time.monotonic()
        wait_until(lambda: connected(daemons), args.timeout, "a connected mesh")
        print(f"connected mesh {time.monotonic() - t0:.1f} s after every daemon was up",
              flush=True)
        for d in daemons:
            for i in range(args.ops):
                d.post(f"{d.host.name} says {i}")
        total = len(daemons) * args.ops
        wait_until(lambda: converged(daemons, total), args.timeout, "equal digests")
        print(lab.summary(), flush=True)
        victims = [h for h in hosts if h.name in args.partition]
        if victims:
            lab.partition(victims)
            print(f"partitioned {' '.join(h.name for h in victims)}", flush=True)
        for spec in args.loss:
            name, _, pct = spec.partition(":")
            lab.loss(next(h for h in hosts if h.name == name), int(pct))
            print(f"{pct}% loss at {name}", flush=True)
        if victims or args.loss:
            for d in daemons:  # written while the faults are on
                d.post(f"{d.host.name} during the fault")
            total += len(daemons)
        if args.hold:
            print(f"holding {args.hold:g} s (Ctrl-C ends)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(args.hold)
            print(lab.summary(), flush=True)
        if victims or args.loss:
            lab.heal()
            t0 = time.monotonic()
            wait_until(lambda: converged(daemons, total), args.timeout, "equal digests")
            print(f"healed; every op everywhere after {time.monotonic() - t0:.1f} s")
            print(lab.summary(), flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build a lab, run daemons, print a summary, tear down")
    up.add_argument("--hosts", type=int, default=5, help="hosts per LAN")
    up.add_argument("--lans", type=int, default=1, choices=[1, 2],
                    help="2: two LANs joined by a router")
    up.add_argument("--ops", type=int, default=2, help="messages posted by each host")
    up.add_argument("--bootstrap", action="store_true",
                    help="every host also bootstraps from the first (across LANs, always)")
    up.add_argument("--no-mdns", action="store_true", help="bootstrap only, no mDNS")
    up.add_argument("--ipv6", action="store_true", help="IPv6 (ULA) addresses too")
    up.add_argument("--partition", nargs="*", default=[], metavar="HOST",
                    help="cut these hosts off after convergence, heal after --hold")
    up.add_argument("--loss", nargs="*", default=[], metavar="HOST:PCT")
    up.add_argument("--hold", type=float, default=0.0, help="seconds to keep faults on")
    up.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("cleanup", help="delete namespaces of labs whose process is gone")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"meshlab: {reason}", file=sys.stderr)
        return 2
    if args.command == "cleanup":
        for ns in cleanup_stale():
            print(f"deleted {ns}")
        return 0
    cleanup_stale()
    # Torn down by Lab.__exit__ on SIGTERM as on Ctrl-C (SIGINT is handled explicitly:
    # a background job of a non-interactive shell starts with it ignored).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        _up(args)
    except (TimeoutError, LabError) as exc:
        print(f"meshlab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; torn down", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
