"""Import direction is one way (service -> models -> dsp); dsp stays pure DSP."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "dsp.io",
        "dsp.pipeline",
        "dsp.activity",
        "dsp.pitch",
        "dsp.rate",
        "dsp.mirroring",
        "dsp.verbal",
    ],
)
def test_dsp_imports_no_web_or_contract_layer(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('pydantic', 'fastapi', 'starlette', 'models', 'service', "
        "'pydantic_settings', 'pocketsphinx') if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_models_import_no_service() -> None:
    code = "import sys, models; print('service' in sys.modules or 'fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["service.summary", "service.report_page"])
def test_report_words_and_page_are_pure(module: str) -> None:
    """The summary and the page are functions of a report: no web framework, no
    analysis pipeline (a batch or a route renders them without either)."""
    code = (
        f"import sys, {module}; "
        "bad = [m for m in ('fastapi', 'starlette', 'service.app', 'service.analysis', "
        "'dsp.pipeline', 'librosa') if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
