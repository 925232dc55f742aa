"""aiortc loads without PyAV (transport/_nomedia.py): data channels work, media cannot be
used by mistake, and PyAV itself stays importable. Each check runs in a fresh
interpreter, since the test process may have loaded PyAV or aiortc already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("aiortc", reason="aiortc cannot be imported: WebRTC transport tests skipped")


def run(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_data_channel_opens_and_carries_bytes_without_pyav_in_memory() -> None:
    result = run("""
        import asyncio, json, sys
        from liberation_node.transport import TransportConfig, WebRtcTransport

        async def main():
            config = TransportConfig(ice_addresses=("127.0.0.1",), connect_timeout_s=10.0)
            got = asyncio.get_running_loop().create_future()
            ignore = lambda link: None
            a = WebRtcTransport(config, ignore, lambda link, data: None, ignore)
            b = WebRtcTransport(config, ignore, lambda link, data: got.set_result(data),
                                ignore)
            link = await a.dial(b.answer)
            link.send(b"over the channel")
            data = await asyncio.wait_for(got, 10)
            await a.close()
            await b.close()
            return data

        data = asyncio.run(main())
        print(json.dumps({"data": data.decode(),
                          "av": sorted(m for m in sys.modules if m.split(".")[0] == "av")}))
    """)
    assert result == {"data": "over the channel", "av": []}


def test_the_stand_ins_refuse_media_with_a_clear_error() -> None:
    result = run("""
        import json
        import liberation_node.transport.webrtc
        from aiortc import mediastreams, rtcrtpreceiver
        from liberation_node.transport._nomedia import MediaUnavailable

        try:
            mediastreams.AudioFrame()
        except MediaUnavailable as exc:
            frame = str(exc)
        try:
            rtcrtpreceiver.av.open
        except AttributeError as exc:
            attribute = str(exc)
        print(json.dumps({"frame": frame, "attribute": attribute}))
    """)
    assert "av.AudioFrame: audio and video are not loaded" in str(result["frame"])
    assert "no attribute 'open': audio and video are not loaded" in str(result["attribute"])


def test_pyav_itself_is_still_importable_afterwards() -> None:
    result = run("""
        import json, liberation_node.transport.webrtc
        import av

        print(json.dumps({"real": hasattr(av, "__version__") and hasattr(av, "open")}))
    """)
    assert result == {"real": True}


def test_nothing_is_stood_in_when_pyav_is_loaded_first() -> None:
    result = run("""
        import json
        import av
        from liberation_node.transport import _nomedia
        from aiortc import mediastreams

        print(json.dumps({"used": _nomedia.load_aiortc(),
                          "real": mediastreams.AudioFrame is av.AudioFrame}))
    """)
    assert result == {"used": False, "real": True}
