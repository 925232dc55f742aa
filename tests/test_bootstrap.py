"""Bootstrap lists and arguments (liberation_node/bootstrap.py, transport.md §8): the URL
forms a person pastes, lists, the config.toml value, and the files shipped in bootstrap/."""

from __future__ import annotations

from pathlib import Path

import pytest

from liberation_node.bootstrap import (
    BootstrapError,
    BootstrapPeer,
    config_value,
    load_list,
    parse_argument,
    resolve,
    signaling_url,
)
from liberation_node.core.identity import Identity

ROOT = Path(__file__).resolve().parent.parent
NODE = Identity.from_seed(b"\x05" * 32)


@pytest.mark.parametrize(("given", "url"), [
    ("http://192.0.2.10:7411/v1/signal", "http://192.0.2.10:7411/v1/signal"),
    ("http://192.0.2.10:7411", "http://192.0.2.10:7411/v1/signal"),
    ("http://192.0.2.10:7411/", "http://192.0.2.10:7411/v1/signal"),
    ("192.0.2.10:7411", "http://192.0.2.10:7411/v1/signal"),
    ("192.0.2.10", "http://192.0.2.10:7411/v1/signal"),
    ("  node.example.org:9000 ", "http://node.example.org:9000/v1/signal"),
    ("[2001:db8::1]:7411", "http://[2001:db8::1]:7411/v1/signal"),
    ("2001:db8::1", "http://[2001:db8::1]:7411/v1/signal"),
    ("https://node.example.org", "https://node.example.org/v1/signal"),
    ("https://node.example.org/mesh/v1/signal", "https://node.example.org/mesh/v1/signal"),
    ("HTTP://192.0.2.10:7411", "http://192.0.2.10:7411/v1/signal"),
])
def test_signaling_url_forms(given: str, url: str) -> None:
    assert signaling_url(given) == url
    assert signaling_url(url) == url  # normalising twice changes nothing


@pytest.mark.parametrize(("given", "message"), [
    ("ftp://192.0.2.10/v1/signal", "not an http"),
    ("", "not a URL"),
    ("http://", "no host"),
    ("192.0.2.10:99999", "out of range"),
    ("192.0.2.10:port", "port"),
    ("http://user:pw@192.0.2.10:7411", "no user name"),
    ("http://192.0.2.10 :7411", "not a URL"),
    ("192.0.2.10:0", "port 0"),
])
def test_bad_urls_say_why(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signaling_url(given)


def test_an_argument_with_an_expected_id() -> None:
    assert parse_argument(f"192.0.2.10:7411#{NODE.text}") == BootstrapPeer(
        "http://192.0.2.10:7411/v1/signal", NODE.public_key)
    with pytest.raises(BootstrapError, match="bad node id after '#'"):
        parse_argument("192.0.2.10:7411#lnnotanid")
    with pytest.raises(BootstrapError, match="--bootstrap ftp://x: 'ftp://x' is not an http"):
        parse_argument("ftp://x")


def test_a_list_states_the_genesis_of_its_network(tmp_path: Path) -> None:
    """ops.md §14: a list for our network stating another genesis is refused."""
    path = tmp_path / "net.toml"
    path.write_text('network = "n"\ngenesis = 2025-01-01T00:00:00Z\n[[peer]]\nurl = "a:1"\n')
    assert len(load_list(path, "n", genesis=1_735_689_600_000)) == 1
    with pytest.raises(BootstrapError, match=r"genesis 1735689600000 \(2025-01-01T00:00:00"
                                             r"\+00:00\) in this list, but this node uses 5"):
        load_list(path, "n", genesis=5)
    assert load_list(path, "other", genesis=5) == []  # another network's list: not ours
    path.write_text('network = "n"\ngenesis = 1735689600000\n')
    assert load_list(path, "n", genesis=1_735_689_600_000) == []
    path.write_text('network = "n"\ngenesis = 2025-01-01T00:00:00\n')  # no offset
    with pytest.raises(BootstrapError, match="a date-time with its offset"):
        load_list(path, "n", genesis=5)


def test_lists_take_every_url_form(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    path.write_text(f'network = "n"\n[[peer]]\nurl = "192.0.2.1:7411"\nid = "{NODE.text}"\n'
                    '[[peer]]\nurl = "http://192.0.2.2:7411"\n')
    assert load_list(path, "n") == [
        BootstrapPeer("http://192.0.2.1:7411/v1/signal", NODE.public_key),
        BootstrapPeer("http://192.0.2.2:7411/v1/signal", None)]
    assert load_list(path, "other") == []
    (tmp_path / "bad.toml").write_text('network = "n"\n[[peer]]\nurl = "ftp://x"\n')
    with pytest.raises(BootstrapError, match=r"bad.toml peer 1: 'ftp://x' is not an http"):
        load_list(tmp_path / "bad.toml", "n")
    (tmp_path / "flat.toml").write_text('network = "n"\npeer = "192.0.2.1"\n')
    with pytest.raises(BootstrapError, match=r"array of tables"):
        load_list(tmp_path / "flat.toml", "n")
    # A relative list path in config.toml is the data directory's.
    assert resolve(["net.toml", "192.0.2.3"], "n", base=tmp_path)[1:] == [
        BootstrapPeer("http://192.0.2.2:7411/v1/signal", None),
        BootstrapPeer("http://192.0.2.3:7411/v1/signal", None)]


def test_the_config_toml_value() -> None:
    assert config_value("192.0.2.1:7411", "config.toml: bootstrap") == ("192.0.2.1:7411",)
    assert config_value(["a.toml", f"192.0.2.1#{NODE.text}"], "x") == (
        "a.toml", f"192.0.2.1#{NODE.text}")
    with pytest.raises(BootstrapError, match=r"config\.toml: bootstrap: expected a string"):
        config_value(7411, "config.toml: bootstrap")
    with pytest.raises(BootstrapError, match=r"^config.toml: bootstrap: ftp://x: "):
        config_value(["ftp://x"], "config.toml: bootstrap")


def test_the_shipped_lists_are_valid() -> None:
    lists = sorted((ROOT / "bootstrap").glob("*.toml"))
    assert [p.name for p in lists] == ["example.toml"]
    peers = load_list(ROOT / "bootstrap" / "example.toml", "example")
    assert len(peers) == 3 and sum(p.node_id is not None for p in peers) == 2
    assert all(p.url.endswith("/v1/signal") for p in peers)
