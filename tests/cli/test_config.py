"""Configuration (config.py): flag > environment > config.toml > default, checked whole, and
`liberation-node config` showing each value and its source."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liberation_node import config, datadir
from liberation_node.config import SETTINGS, ConfigError, NodeConfig
from liberation_node.core.identity import Identity

from .conftest import cli

README = Path(__file__).resolve().parents[2] / "README.md"


def effective(home: Path, *args: str, **env: str) -> dict[str, Any]:
    result = cli(home, "config", "--json", "--data-dir", str(home / "node"), *args, **env)
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)["settings"]
    return settings


def write_config(home: Path, text: str) -> Path:
    datadir.init(home / "node", "cfg-test")
    path = home / "node" / "config.toml"
    path.write_text('network = "cfg-test"\n' + text)
    return path


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, "peer_port = 7000\n[peering]\nlow = 2\nhigh = 9\n")
    both = {"LIBERATION_PEER_PORT": "8000", "LIBERATION_PEERING_LOW": "3"}
    got = effective(tmp_path, "--peer-port", "9000", **both)
    assert got["peer_port"] == {"value": 9000, "source": "flag", "origin": "--peer-port"}
    assert got["peering.low"] == {"value": 3, "source": "env",
                                  "origin": "LIBERATION_PEERING_LOW"}
    assert got["peering.high"] == {"value": 9, "source": "config.toml", "origin": str(path)}
    assert got["control_port"] == {"value": 7412, "source": "default", "origin": None}
    got = effective(tmp_path, **both)
    assert got["peer_port"]["value"] == 8000
    got = effective(tmp_path)
    assert (got["peer_port"]["value"], got["peering.low"]["value"]) == (7000, 2)


def test_every_kind_from_every_source(tmp_path: Path) -> None:
    write_config(tmp_path, 'name = "from file"\nadvertise = false\nbootstrap = ["http://a:1/v1/'
                           'signal"]\nhealth_interval_s = 2\n'
                           '[transport]\nice_addresses = ["127.0.0.1"]\n')
    got = effective(tmp_path)
    assert {k: v["value"] for k, v in got.items() if v["source"] == "config.toml"} == {
        "network": "cfg-test", "name": "from file", "advertise": False,
        "bootstrap": ["http://a:1/v1/signal"], "health_interval_s": 2.0,
        "transport.ice_addresses": ["127.0.0.1"]}
    env = {"LIBERATION_NAME": "from env", "LIBERATION_ADVERTISE": "yes",
           "LIBERATION_BOOTSTRAP": "http://b:1/v1/signal, http://c:1/v1/signal",
           "LIBERATION_TRANSPORT_ICE_ADDRESSES": "", "LIBERATION_LOG_JSON": "1"}
    got = effective(tmp_path, **env)
    assert {k: v["value"] for k, v in got.items() if v["source"] == "env"} == {
        "name": "from env", "advertise": True, "log_json": True,
        "bootstrap": ["http://b:1/v1/signal", "http://c:1/v1/signal"],
        "transport.ice_addresses": []}  # an empty variable is an empty list
    friend = Identity.from_seed(bytes([1]) * 32).text
    got = effective(tmp_path, "--name", "from flag", "--no-advertise", "--bootstrap",
                    f"http://d:1/v1/signal#{friend}", "--bootstrap", "friends.toml",
                    "--ice-address", "::1", "--no-mdns", **env)
    assert {k: v["value"] for k, v in got.items() if v["source"] == "flag"} == {
        "name": "from flag", "advertise": False, "mdns": False,
        "bootstrap": [f"http://d:1/v1/signal#{friend}", "friends.toml"],
        "transport.ice_addresses": ["::1"]}


def test_a_bootstrap_list_named_in_the_file_is_beside_it(tmp_path: Path) -> None:
    write_config(tmp_path, 'bootstrap = ["friends.toml", "/etc/x.toml", "http://a:1/v1/s"]\n')
    assert effective(tmp_path)["bootstrap"]["value"] == [
        str(tmp_path / "node" / "friends.toml"), "/etc/x.toml", "http://a:1/v1/s"]


def test_the_text_output_is_the_toml_of_the_values(tmp_path: Path) -> None:
    write_config(tmp_path, 'name = "quote \\" and ünïcode"\n[peering]\nhigh = 12\n')
    text = cli(tmp_path, "config", "--data-dir", str(tmp_path / "node"), "--low", "3",
               LIBERATION_MDNS="off")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"# data directory: {tmp_path / 'node'} (flag --data-dir)"
    assert lines[1] == f"# config file:    {tmp_path / 'node' / 'config.toml'}"
    assert [line.split("#")[-1].strip() for line in lines[2:]] == [
        "config.toml", "default", "config.toml", "default", "default", "default", "default",
        "default", "default", "default", "default", "env LIBERATION_MDNS", "default", "default",
        "default", "default", "default", "default",
        "flag --low",
        "config.toml", "default", "default", "default", "default", "default", "default",
        "default", "default"]
    parsed = tomllib.loads(text.stdout)
    flat = {f"{k}.{kk}": vv for k, v in parsed.items() if isinstance(v, dict)
            for kk, vv in v.items()} | {k: v for k, v in parsed.items() if not isinstance(v, dict)}
    json_values = effective(tmp_path, "--low", "3", LIBERATION_MDNS="off")
    assert flat == {k: v["value"] for k, v in json_values.items()}
    assert flat["name"] == 'quote " and ünïcode'


@given(st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.integers(0, 2**40),
    st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), max_size=4)))
def test_toml_value_reads_back(value: Any) -> None:
    expected = list(value) if isinstance(value, tuple) else value
    assert tomllib.loads(f"x = {config.toml_value(value)}")["x"] == expected


@pytest.mark.parametrize(("text", "message"), [
    ("peer_prot = 1\n", "unknown setting 'peer_prot' (did you mean 'peer_port'?) (every "
                        "setting: liberation-node config)"),
    ("[peerin]\nlow = 1\n", "unknown section [peerin] (did you mean 'peering'?) (sections: "
                            "discovery, peering, retention, transport)"),
    ("[peering]\nlo = 1\n", "unknown setting 'peering.lo' (did you mean 'peering.low'?)"),
    ("peering = 3\n", "peering is a section: write [peering] and its keys"),
    ('peer_port = "7411"\n', "peer_port: expected an integer 0-65535, got '7411'"),
    ("peer_port = 70000\n", "peer_port: expected an integer 0-65535, got 70000"),
    ("mdns = 1\n", "mdns: expected true or false, got 1"),
    ('bootstrap = "http://a:1"\n', "bootstrap: expected a list of strings, got 'http://a:1'"),
    ('bootstrap = ["ftp://a"]\n', "bootstrap: ftp://a: 'ftp://a' is not an http(s) "
                                  "signaling URL"),
    ('[transport]\nice_servers = ["stun:a", "stun:b"]\n', "at most one STUN server"),
    ('[transport]\nice_addresses = ["nowhere"]\n', "'nowhere' is not an IP address"),
    ('name = "' + "x" * 65 + '"\n', "name: at most 64 bytes of UTF-8"),
    ("[peering]\nlow = 9\nhigh = 8\n", "peering.low 9 (config.toml "),
])
def test_a_bad_config_file_is_refused_naming_it(tmp_path: Path, text: str,
                                                message: str) -> None:
    path = write_config(tmp_path, text)
    for command in (["config"], ["run"], ["address"]):
        result = cli(tmp_path, *command, "--data-dir", str(tmp_path / "node"))
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr
        assert str(path) in result.stderr or "STUN" in message or "peering.low" in message


@pytest.mark.parametrize(("env", "message"), [
    ({"LIBERATION_PEER_PROT": "1"}, "unknown environment variable LIBERATION_PEER_PROT (did "
                                    "you mean 'LIBERATION_PEER_PORT'?)"),
    ({"LIBERATION_PEERING_LOW": "four"}, "LIBERATION_PEERING_LOW: expected an integer 1-64, "
                                         "got 'four'"),
    ({"LIBERATION_MDNS": "maybe"}, "LIBERATION_MDNS: expected true or false, got 'maybe'"),
    ({"LIBERATION_PEERING_LOW": "9"}, "peering.low 9 (env LIBERATION_PEERING_LOW) is above "
                                      "peering.high 8 (default)"),
    ({"LIBERATION_NETWORK": "other"}, "belongs to network 'cfg-test', not 'other' (from "
                                      "LIBERATION_NETWORK)"),
])
def test_a_bad_environment_is_refused_naming_the_variable(tmp_path: Path, env: dict[str, str],
                                                          message: str) -> None:
    write_config(tmp_path, "")
    result = cli(tmp_path, "config", "--data-dir", str(tmp_path / "node"), **env)
    assert (result.returncode, result.stdout) == (1, "")
    assert message in result.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--peer-port", "x"], "expected an integer 0-65535, got 'x'"),
    (["--low", "0"], "expected an integer 1-64, got 0"),
    (["--ice-address", "nowhere"], "'nowhere' is not an IP address"),
    (["--network", "Bad Name"], "is not a network name"),
])
def test_a_bad_flag_is_a_usage_error(tmp_path: Path, flags: list[str], message: str) -> None:
    for command in ("config", "run"):
        result = cli(tmp_path, command, "--data-dir", str(tmp_path / "node"), *flags)
        assert result.returncode == 2
        assert message in result.stderr
    assert not (tmp_path / "node").exists()


def test_config_creates_nothing(tmp_path: Path) -> None:
    got = effective(tmp_path)
    assert got["network"] == {"value": "liberation", "source": "default", "origin": None}
    assert not (tmp_path / "node").exists()


def test_a_new_data_dir_takes_the_network_from_the_environment(tmp_path: Path) -> None:
    result = cli(tmp_path, "init", "--data-dir", str(tmp_path / "node"),
                 LIBERATION_NETWORK="from-env")
    assert result.returncode == 0, result.stderr
    assert datadir.load(tmp_path / "node").config.network == "from-env"
    assert effective(tmp_path)["network"]["source"] == "config.toml"


def test_settings_have_distinct_names_and_node_config_defaults() -> None:
    assert len({s.option for s in SETTINGS}) == len({s.env for s in SETTINGS}) == len(SETTINGS)
    resolved = config.resolve(Path("/x"), None, {}, {})
    assert resolved.node_config() == NodeConfig(data_dir=Path("/x"))
    assert all(v.source == "default" for v in resolved.values.values())


def test_resolve_refuses_what_spans_settings() -> None:
    with pytest.raises(ConfigError, match=r"peering.low 5 \(flag --low\) is above "
                                          r"peering.high 4 \(flag --high\)"):
        config.resolve(Path("/x"), None, {}, {"peering.low": 5, "peering.high": 4})


def test_the_readme_documents_every_setting() -> None:
    text = README.read_text()
    reference = text[text.index("## Configuration"):]
    for setting in SETTINGS:
        name = setting.key.rsplit(".", 1)[-1]
        assert f"`{name}`" in reference, setting.key
        assert setting.env in reference, setting.env
        assert setting.option in reference, setting.option


def test_address_without_a_node_comes_from_the_configuration(tmp_path: Path) -> None:
    write_config(tmp_path, 'peer_port = 7500\n[transport]\nice_addresses = ["10.1.2.3", '
                           '"192.0.2.9"]\n')
    node_id = datadir.load(tmp_path / "node").identity.text
    result = cli(tmp_path, "address", "--data-dir", str(tmp_path / "node"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"http://10.1.2.3:7500/v1/signal#{node_id}",
                                          f"http://192.0.2.9:7500/v1/signal#{node_id}"]
    assert result.stderr == (f"no node is running for {tmp_path / 'node'}; with this "
                             "configuration it would be reached at:\n")
    result = cli(tmp_path, "address", "--json", "--data-dir", str(tmp_path / "node"),
                 LIBERATION_PUBLIC_URLS="https://node.example.org/v1/signal")
    assert json.loads(result.stdout) == {
        "join_urls": [f"https://node.example.org/v1/signal#{node_id}"], "running": False}


@pytest.mark.parametrize(("env", "message"), [
    ({"LIBERATION_ADVERTISE": "false"}, "this node advertises no address (advertise = false)"),
    ({"LIBERATION_PEER_PORT": "0"}, "the peer port is picked when the node starts"),
])
def test_address_without_a_node_that_cannot_say(tmp_path: Path, env: dict[str, str],
                                                message: str) -> None:
    write_config(tmp_path, "")
    result = cli(tmp_path, "address", "--data-dir", str(tmp_path / "node"), **env)
    assert (result.returncode, result.stdout) == (1, "")
    assert message in result.stderr


def test_address_without_a_data_dir(tmp_path: Path) -> None:
    result = cli(tmp_path, "address", "--data-dir", str(tmp_path / "none"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: no data directory at {tmp_path / 'none'}")
    assert not (tmp_path / "none").exists()
