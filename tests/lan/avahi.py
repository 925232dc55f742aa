"""avahi (the standard Linux mDNS stack) as an observer on a lab LAN.

avahi-daemon talks to its clients over the D-Bus system bus, so an observer host
gets a private bus: its own dbus-daemon with a config and socket in the lab's
directory (DBUS_SYSTEM_BUS_ADDRESS points there), and avahi-daemon with a private
/run (`unshare --mount` and a tmpfs) so it never sees or touches the machine's.
Both run only inside the observer's namespace and are killed by PID when the lab
closes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from scripts.meshlab import Host, LabError, wait_until

TOOLS = ("dbus-daemon", "avahi-daemon", "avahi-browse", "unshare")

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONFIG = """[server]
use-ipv4=yes
use-ipv6=yes
allow-interfaces=eth0
enable-dbus=yes
disallow-other-stacks=no
[wide-area]
enable-wide-area=no
[publish]
disable-publishing=yes
[reflector]
[rlimits]
"""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class Avahi:
    def __init__(self, host: Host, workdir: Path) -> None:
        self.host = host
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "dbus.sock"
        (workdir / "dbus.conf").write_text(DBUS_CONFIG.format(socket=self.socket))
        (workdir / "avahi.conf").write_text(AVAHI_CONFIG)
        self.env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.socket}"}
        with open(workdir / "avahi.log", "wb") as log:  # the children keep their own copy
            host.popen(["dbus-daemon", f"--config-file={workdir / 'dbus.conf'}", "--nofork",
                        "--nopidfile", "--nosyslog"], stdout=log, stderr=subprocess.STDOUT)
            wait_until(self.socket.exists, 10, "the private D-Bus socket")
            self.daemon = host.popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 "mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon && exec avahi-daemon "
                 f"-f {workdir / 'avahi.conf'} --no-drop-root --no-chroot --no-rlimits"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def browse(self, service_type: str) -> list[list[str]]:
        """`avahi-browse -rtp TYPE`: the resolved entries ('=' lines), split at ';'."""
        if self.daemon.poll() is not None:
            raise LabError(f"avahi-daemon exited {self.daemon.returncode}")
        proc = subprocess.run(["ip", "netns", "exec", self.host.ns, "avahi-browse", "-rtp",
                               service_type], capture_output=True, text=True, env=self.env,
                              timeout=30)
        return [line.split(";") for line in proc.stdout.splitlines() if line.startswith("=")]

    def wait_for(self, service_type: str, timeout: float) -> list[list[str]]:
        deadline = time.monotonic() + timeout
        while True:
            entries = self.browse(service_type)
            if entries or time.monotonic() > deadline:
                return entries
            time.sleep(0.5)
