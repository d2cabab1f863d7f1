"""A bounded, seeded sample of ``tests/fuzzcases.py`` on every push (``bench/fuzz.py`` runs
all of them): through the CLI (exit 0, or exit 2 with one ``error: <code>:`` line) and the
real HTTP service (a report or a problem+json 4xx; no 5xx, no traceback in its log)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fuzzcases import Case, cases, cli_verdict, http_verdict, sample
from tests.service.conftest import Server

#: cases per push; MIRRORLINE_FUZZ_SAMPLE=2000 runs them all (or use bench/fuzz.py)
SAMPLE = int(os.environ.get("MIRRORLINE_FUZZ_SAMPLE", "48"))
HANG_S = 60.0


@pytest.fixture(scope="module")
def picked() -> list[Case]:
    everything = list(cases())
    assert len(everything) >= 1000
    assert len({c.name for c in everything}) == len(everything)
    return sample(everything, SAMPLE)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client(timeout=HANG_S) as c:
        yield c


def test_the_generator_is_seeded() -> None:
    first = [(c.name, c.data) for c in cases(per_base=2)]
    assert first == [(c.name, c.data) for c in cases(per_base=2)]
    kinds = {c.name.split(".")[1] for c in cases() if "." in c.name}
    assert {"truncate", "flip_bytes", "lying_wav_header", "lying_flac_streaminfo"} <= kinds


def test_cli_sample(picked: list[Case], tmp_path: Path) -> None:
    paths = []
    for i, case in enumerate(picked):
        path = tmp_path / f"{i:04d}{case.suffix}"
        path.write_bytes(case.data)
        paths.append(str(path))
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as the CLI runs
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        futures = [pool.submit(cli_verdict, p) for p in paths]
        findings = [
            f"{case.name}: {verdict}"
            for case, future in zip(picked, futures, strict=True)
            if (verdict := future.result(timeout=HANG_S)) is not None
        ]
    assert findings == []


def test_http_sample(picked: list[Case], server: Server, client: httpx.Client) -> None:
    findings = []
    for case in picked:
        response = client.post(
            "/v1/analyze", files={"file": (f"{case.name}{case.suffix}", case.data)}
        )
        if (verdict := http_verdict(response)) is not None:
            findings.append(f"{case.name}: {verdict}")
    assert findings == []
    log = server.log()
    assert "Traceback" not in log and '"level": "ERROR"' not in log
