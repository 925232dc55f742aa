"""What ships beside the code: README links, LICENSE, Dockerfile, the systemd unit.

The Dockerfile cannot be built on every machine (no Docker engine), so its promises
are checked here by reading it: what it copies exists and passes .dockerignore, it
runs as a non-root user, keeps /data as a volume that is the data directory,
exposes the default ports and checks health with the CLI.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from liberation_node.config import DEFAULT_CONTROL_PORT, DEFAULT_PEER_PORT, ENV_PREFIX

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"  # [text](target)
                  r"|^\s*\[[^\]]+\]:\s*(\S+)"  # [label]: target
                  r"|(?:href|src)=\"([^\"]+)\"", re.MULTILINE)


def links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    return [next(g for g in m.groups() if g) for m in LINK.finditer(text)]


def anchors(text: str) -> set[str]:
    """GitHub's ids for the headings: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+\s+(.+)$", text, flags=re.MULTILINE)}


def markdown_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md")
                  if not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def broken(path: Path, external_ok: bool) -> list[str]:
    text = path.read_text()
    problems = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            if not external_ok:
                problems.append(f"{target}: points outside the repository")
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if file_part.startswith("/") or not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            problems.append(f"{target}: no such heading")
    return problems


def test_readme_links_stay_inside_the_repository() -> None:
    readme = ROOT / "README.md"
    assert len(links(readme.read_text())) >= 5  # the check sees the links
    assert broken(readme, external_ok=False) == []


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(path: Path) -> None:
    assert broken(path, external_ok=True) == []


def test_the_link_check_finds_what_it_should(tmp_path: Path) -> None:
    assert links("[a](../shared/DESIGN.md) ![b](x.png)\n[c]: http://e.org\n<a href=\"y\">"
                 "\n```\n[not](a-link)\n```") == ["../shared/DESIGN.md", "x.png",
                                                  "http://e.org", "y"]
    page = ROOT / "README.md"
    assert "#no-such-heading" not in anchors(page.read_text())
    assert {"quick-start", "install-on-a-raspberry-pi"} <= anchors(page.read_text())


def test_license_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_runs_the_node_as_promised() -> None:
    text = dockerfile()
    python = re.findall(r"^ARG PYTHON_VERSION=(\S+)$", text, re.MULTILINE)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python and tuple(map(int, python[0].split("."))) >= tuple(
        map(int, requires.lstrip(">=").split(".")))
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(b.startswith("python:${PYTHON_VERSION}-slim") for b in bases)
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user and all(part.isdigit() and int(part) != 0 for part in user[-1].split(":"))
    assert re.search(r'^VOLUME \["/data"\]$', text, re.MULTILINE)
    assert re.search(rf"^\s*{ENV_PREFIX}DATA_DIR=/data\b", text, re.MULTILINE)
    exposed = re.findall(r"^EXPOSE (.+)$", text, re.MULTILINE)
    assert exposed and set(exposed[0].split()) == {f"{DEFAULT_PEER_PORT}/tcp",
                                                   f"{DEFAULT_CONTROL_PORT}/tcp"}
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD .*liberation-node status", text, re.MULTILINE)
    assert '--only-binary=:all:' in text  # a platform lacking a wheel fails loudly
    assert re.search(r'^ENTRYPOINT \["liberation-node"\]$', text, re.MULTILINE)


def test_dockerfile_copies_only_what_the_context_has() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore  # everything else stays out of the build context (.venv, .git)
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.MULTILINE):
        for source in sources.split():
            assert source.rstrip("/") in allowed, source
            assert (ROOT / source).exists(), source


def test_the_systemd_unit_is_hardened() -> None:
    unit = (ROOT / "scripts" / "liberation-node.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.MULTILINE))
    assert settings["ExecStart"].endswith("liberation-node run")
    assert settings["DynamicUser"] == "yes"
    assert settings["StateDirectory"] == "liberation-node"
    assert settings["Environment"] == f"{ENV_PREFIX}DATA_DIR=%S/liberation-node"
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
                       "RestrictSUIDSGID": "yes", "UMask": "0077"}.items():
        assert settings[key] == value, key
    assert settings["KillSignal"] == "SIGTERM"  # the node drains on SIGTERM


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit names /opt/liberation-node; check it against a stand-in binary.
    binary = tmp_path / "liberation-node"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    unit = tmp_path / "liberation-node.service"
    unit.write_text((ROOT / "scripts" / "liberation-node.service").read_text().replace(
        "/opt/liberation-node/bin/liberation-node", str(binary)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
