"""Transport settings: ICE server URLs and the checks made on construction."""

from __future__ import annotations

import pytest

from liberation_node.transport.config import IceServer, TransportConfig, parse_ice_server


def test_defaults_use_no_ice_server_and_every_interface() -> None:
    config = TransportConfig()
    assert config.servers() == () and config.ice_addresses == ()
    assert (config.high_water, config.low_water, config.max_message_bytes) == \
        (1024 * 1024, 256 * 1024, 64 * 1024)


@pytest.mark.parametrize(("url", "parsed"), [
    ("stun:stun.example.org", IceServer("stun", "stun.example.org", 3478)),
    ("stun:10.0.0.1:19302", IceServer("stun", "10.0.0.1", 19302)),
    ("turn:alice:s3cret@turn.example.org:3478",
     IceServer("turn", "turn.example.org", 3478, "alice", "s3cret", "udp")),
    ("turn:alice:p%40ss%3Aword@10.0.0.2?transport=tcp",
     IceServer("turn", "10.0.0.2", 3478, "alice", "p@ss:word", "tcp")),
    ("turns:bob:pw@turn.example.org", IceServer("turns", "turn.example.org", 5349, "bob", "pw",
                                                "tcp")),
])
def test_ice_server_urls(url: str, parsed: IceServer) -> None:
    assert parse_ice_server(url) == parsed


def test_aiortc_gets_the_url_without_credentials() -> None:
    server = parse_ice_server("turn:alice:s3cret@turn.example.org:3478?transport=tcp")
    assert server.url == "turn:turn.example.org:3478?transport=tcp"
    assert "s3cret" not in repr(server)


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.org", "expected stun"),
    ("stun:alice:pw@example.org", "no credentials"),
    ("stun:example.org?transport=tcp", "no credentials and no transport"),
    ("turn:example.org", "needs USER:PASSWORD"),
    ("turns:a:b@example.org?transport=udp", "tcp only"),
    ("stun:example.org:70000", "out of range"),
    ("stun:[::1]:3478", "expected stun"),
])
def test_bad_ice_server_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ice_server(url)


def test_errors_do_not_show_the_password() -> None:
    with pytest.raises(ValueError) as raised:
        parse_ice_server("turn:alice:s3cret@bad host")
    assert "s3cret" not in str(raised.value) and "alice:***@" in str(raised.value)


@pytest.mark.parametrize(("settings", "message"), [
    ({"ice_servers": ("stun:a.example", "stun:b.example")}, "at most one STUN"),
    ({"ice_servers": ("turn:u:p@a.example", "turns:u:p@b.example")}, "at most one TURN"),
    ({"ice_addresses": ("localhost",)}, "not an IP address"),
    ({"connect_timeout_s": 0.0}, "positive"),
    ({"low_water": 2 * 1024 * 1024}, "low_water < high_water"),
    ({"max_message_bytes": 1024 * 1024}, "max_message_bytes"),
])
def test_bad_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransportConfig(**settings)  # type: ignore[arg-type]


def test_one_stun_and_one_turn_server_together_are_fine() -> None:
    config = TransportConfig(ice_servers=("stun:a.example", "turn:u:p@b.example"))
    assert [s.scheme for s in config.servers()] == ["stun", "turn"]
