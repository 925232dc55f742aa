"""Load aiortc without its media stack: a node speaks data channels only.

aiortc's modules import PyAV (FFmpeg's codecs, x265, GnuTLS and more, bundled in
the wheel) at module level, for audio and video tracks, although a data channel
never touches them. Loading PyAV costs about 24 MiB of resident memory (its
shared libraries' pages and what their initialisers allocate: measured with
/proc/self/smaps and tracemalloc, scripts/bench_daemons.py memory), about a
quarter of an idle node, for code this node cannot run: signal.py refuses every
SDP but one m=application DTLS/SCTP section, so no media track, encoder or
decoder is ever created.

So aiortc is imported with small stand-ins for the few PyAV names its modules
bind at import time; each raises `MediaUnavailable` if anything ever tried to
use it. The stand-ins are in `sys.modules` only while aiortc imports (a later
`import av` anywhere in the process loads the real PyAV), and they are not used
at all when PyAV or aiortc is loaded already (then aiortc is whatever it is).
Import this module before anything that imports aiortc.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, NoReturn


class MediaUnavailable(RuntimeError):
    """Something tried to use audio or video, which this node never does."""


class _Missing:
    """A PyAV class aiortc names at import time but only uses for media."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _unavailable(type(self).__name__)


def _unavailable(name: str) -> NoReturn:
    raise MediaUnavailable(f"av.{name}: audio and video are not loaded; this node uses "
                           "data channels only (liberation_node/transport/_nomedia.py)")


def _module(name: str, classes: tuple[str, ...]) -> ModuleType:
    module = ModuleType(name, "a stand-in for PyAV: data channels need none of it")
    module.__path__ = []  # a package, so that its submodules can be imported
    for cls in classes:
        setattr(module, cls, type(cls, (_Missing,), {"__module__": name}))

    def missing(attribute: str) -> NoReturn:
        # An AttributeError, as for any missing name (introspection expects one); it
        # says why, e.g. if a later aiortc binds another PyAV name at import time.
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}: audio and "
                             "video are not loaded (liberation_node/transport/_nomedia.py)")

    module.__getattr__ = missing  # type: ignore[method-assign]
    return module


# Every PyAV name aiortc 1.16 binds at import time (its modules' `import av`,
# `from av... import ...` lines), by module.
STAND_INS: dict[str, tuple[str, ...]] = {
    "av": ("AudioFrame", "AudioResampler", "CodecContext", "VideoFrame"),
    "av.frame": ("Frame",),
    "av.packet": ("Packet",),
    "av.video": (),
    "av.video.codeccontext": ("VideoCodecContext",),
}


def load_aiortc() -> bool:
    """Import aiortc with the stand-ins, unless PyAV or aiortc is loaded already.
    Returns whether the stand-ins were used."""
    if "aiortc" in sys.modules or "av" in sys.modules:
        return False
    stand_ins = {name: _module(name, classes) for name, classes in STAND_INS.items()}
    sys.modules.update(stand_ins)
    try:
        import aiortc  # noqa: F401  (the package imports all its modules)
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return True


load_aiortc()
