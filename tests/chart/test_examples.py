"""Every TestPlan users copy from this repository validates against the CRD's own schema:
examples/**/*.yaml and the ```yaml blocks of docs/**/*.md and README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.chart.chart_tools import REPO, plan_jsonschema

FENCE = re.compile(r"^```(?:yaml|yml)[^\n]*\n(.*?)^```", re.M | re.S)


def example_files() -> list[Path]:
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in (REPO / "examples").rglob(pattern))


def markdown_files() -> list[Path]:
    files = sorted((REPO / "docs").rglob("*.md"))
    readme = REPO / "README.md"
    return [*files, readme] if readme.is_file() else files


def collect() -> list[tuple[str, dict]]:
    """(where, TestPlan) for every TestPlan in examples/ and in the docs' YAML code blocks."""
    found = []
    for path in example_files():
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == "TestPlan":
                found.append((f"{path.relative_to(REPO)}#{i}", doc))
    for path in markdown_files():
        text = path.read_text()
        for m in FENCE.finditer(text):
            block = m.group(1)
            if not re.search(r"^kind:\s*TestPlan\s*$", block, re.M):
                continue
            line = text.count("\n", 0, m.start()) + 1
            where = f"{path.relative_to(REPO)}:{line}"
            try:
                docs = list(yaml.safe_load_all(block))
            except yaml.YAMLError as e:
                raise AssertionError(f"{where}: a YAML block with a TestPlan does not parse: {e}") from e
            for doc in docs:
                if isinstance(doc, dict) and doc.get("kind") == "TestPlan":
                    found.append((where, doc))
    return found


PLANS = collect()


def test_there_are_examples():
    from_examples = [w for w, _ in PLANS if w.startswith("examples/")]
    assert from_examples, "no TestPlan found in examples/**/*.yaml (examples/smoke/plan.yaml is expected)"


@pytest.mark.parametrize(("where", "plan"), PLANS, ids=[w for w, _ in PLANS])
def test_example_testplan_matches_the_crd_schema(where, plan):
    validator = jsonschema.Draft7Validator(plan_jsonschema())
    errors = sorted(validator.iter_errors(plan), key=lambda e: list(e.path))
    assert not errors, f"{where}:\n" + "\n".join(
        f"  {'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
    )


def test_source_has_exactly_one_kind():
    """The CRD checks this with a CEL rule, which jsonschema cannot run: check it here."""
    for where, plan in PLANS:
        source = plan["spec"].get("source", {})
        assert len([k for k in ("configMap", "git", "image") if k in source]) == 1, where


def test_the_schema_catches_mistakes():
    """The converted schema is strict enough to catch what the API server would reject."""
    validator = jsonschema.Draft7Validator(plan_jsonschema())
    good = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "namespace": "qa"},
        "spec": {"crontab": "@hourly", "source": {"configMap": {"name": "t"}}, "pytest": {"workers": 4}},
    }
    assert not list(validator.iter_errors(good))
    good["spec"]["pytest"]["workers"] = "auto"
    assert not list(validator.iter_errors(good))
    for path, value in [
        (("spec", "crontab"), 5),
        (("spec", "shards"), 0),
        (("spec", "pytest", "dist"), "random"),
        (("spec", "pytest", "workers"), 1.5),
        (("spec", "crontabb"), "@daily"),
        (("kind",), "TestPlans"),
    ]:
        bad = yaml.safe_load(yaml.safe_dump(good))
        node = bad
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert list(validator.iter_errors(bad)), f"{'.'.join(path)}={value!r} should be rejected"
