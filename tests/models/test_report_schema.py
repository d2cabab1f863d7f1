"""The report's mirroring section is fully declared: every key a real report carries is in
``Report.model_json_schema()``, with a description (``mirrorline schema`` documents it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.mirroring_sim import simulate_call
from dsp.mirroring import ShamCall, analyze_mirroring
from models.params import AnalysisConfig
from models.report import SCHEMA_VERSION, Report
from service.analysis import analyze_source, mirroring_model

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


def _data_paths(node: Any, path: str = "") -> set[str]:
    """Every key path under ``node`` (dumped JSON data); list items are ``[]``."""
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            out.add(sub)
            out |= _data_paths(value, sub)
    elif isinstance(node, list):
        for item in node:
            out |= _data_paths(item, f"{path}[]")
    return out


class _Schema:
    """Walks ``Report.model_json_schema()`` along data paths."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.root = schema

    def resolve(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """The object / array schemas ``node`` may stand for (refs and nullable unions)."""
        if "$ref" in node:
            return self.resolve(self.defs[node["$ref"].rsplit("/", 1)[-1]])
        if "anyOf" in node:
            return [s for alt in node["anyOf"] for s in self.resolve(alt)]
        return [node]

    def child(self, node: dict[str, Any], key: str) -> dict[str, Any] | None:
        """The schema of ``key`` under ``node``; None when not declared."""
        for s in self.resolve(node):
            if key == "[]" and "items" in s:
                return dict(s["items"])
            props = s.get("properties", {})
            if key in props:
                return dict(props[key])
            extra = s.get("additionalProperties")
            names = s.get("propertyNames", {}).get("enum")
            if key != "[]" and isinstance(extra, dict) and (names is None or key in names):
                return extra
        return None

    def at(self, path: str) -> dict[str, Any] | None:
        node: dict[str, Any] | None = self.root
        for key in path.replace("[]", ".[]").split("."):
            if node is None:
                return None
            node = self.child(node, key)
        return node

    def described(self, path: str) -> bool:
        """A description on the property at ``path``, on the model it refers to or, for an
        entry of a mapping (``features.<name>``), on the mapping."""
        node = self.at(path)
        if node is None:
            return False
        if "description" in node or any("description" in s for s in self.resolve(node)):
            return True
        parent, _, key = path.rpartition(".")
        parent_node = self.at(parent) if parent else None
        return (
            parent_node is not None
            and any(
                key not in s.get("properties", {})
                and isinstance(s.get("additionalProperties"), dict)
                for s in self.resolve(parent_node)
            )
            and self.described(parent)
        )


def _undeclared(data: dict[str, Any], schema: _Schema) -> list[str]:
    return sorted(p for p in _data_paths(data["mirroring"], "mirroring") if schema.at(p) is None)


@pytest.fixture(scope="module")
def reports() -> list[dict[str, Any]]:
    """The sample's real report (every mirroring result null: too short) and the same
    report with the mirroring of simulated 10-minute calls, one analysed against shams
    (every field measured, timeline points present)."""
    sample = analyze_source(SAMPLE, AnalysisConfig(), name=SAMPLE.name)
    calls = [
        simulate_call(np.random.default_rng(s), scenario=scenario, duration_s=600.0)
        for s, scenario in enumerate(("independent", "walk", "drift", "strong_ac", "independent"))
    ]
    shams = [ShamCall(c.agent, c.customer, c.windows) for c in calls[1:]]
    out = [sample.model_dump(mode="json")]
    call = calls[0]
    for sham_calls in ((), shams):
        result = analyze_mirroring(call.agent, call.customer, call.windows, shams=sham_calls)
        report = sample.model_copy(update={"mirroring": mirroring_model(result)})
        out.append(Report.model_validate(report.model_dump()).model_dump(mode="json"))
    return out


def test_every_emitted_mirroring_field_is_declared(reports: list[dict[str, Any]]) -> None:
    schema = _Schema(Report.model_json_schema())
    for data in reports:
        assert data["schema_version"] == SCHEMA_VERSION
        assert _undeclared(data, schema) == []
    measured = reports[-1]["mirroring"]
    assert measured["timeline"] and measured["n_shams"] == 4
    assert measured["features"]["pitch_level"]["convergence"]["sham_z"] is not None


def test_every_declared_mirroring_field_is_described(reports: list[dict[str, Any]]) -> None:
    schema = _Schema(Report.model_json_schema())
    paths = set().union(*(_data_paths(d["mirroring"], "mirroring") for d in reports))
    missing = [p for p in sorted(paths) if not p.endswith("[]") and not schema.described(p)]
    assert missing == []


def test_the_walk_finds_an_undeclared_field(reports: list[dict[str, Any]]) -> None:
    """The check above is not vacuous: a field the schema lacks is reported."""
    data = dict(reports[-1])
    mirroring = dict(data["mirroring"])
    mirroring["timeline"] = [dict(mirroring["timeline"][0], surprise=1.0)]
    mirroring["diagnostic"] = {"x": 1}
    mirroring["features"] = dict(mirroring["features"], pitch_range=None)
    data["mirroring"] = mirroring
    found = _undeclared(data, _Schema(Report.model_json_schema()))
    assert found == [
        "mirroring.diagnostic",
        "mirroring.diagnostic.x",
        "mirroring.features.pitch_range",
        "mirroring.timeline[].surprise",
    ]


def test_mirroring_objects_forbid_extra_fields() -> None:
    schema = Report.model_json_schema()
    mirroring = {"Mirroring"}
    pending = ["Mirroring"]
    while pending:  # every model reachable from Mirroring
        name = pending.pop()
        text = repr(schema["$defs"][name])
        for other in schema["$defs"]:
            if f"'#/$defs/{other}'" in text and other not in mirroring:
                mirroring.add(other)
                pending.append(other)
    for name in mirroring:
        assert schema["$defs"][name].get("additionalProperties") is False, name


def test_summary_is_declared_and_filled(reports: list[dict[str, Any]]) -> None:
    """``summary`` (service.summary) is in the schema with a description, and a real
    report carries 3-6 sentences."""
    schema = Report.model_json_schema()
    declared = schema["properties"]["summary"]
    assert declared["type"] == "array" and declared["items"]["type"] == "string"
    assert "plain sentences" in declared["description"]
    sentences = reports[0]["summary"]
    assert 3 <= len(sentences) <= 6 and all(s.endswith(".") for s in sentences)
