"""docs/design.md, the API contract: its field map covers the CRD and names functions that exist;
the documentation links only to files inside the repository."""

import importlib
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"
CRD = REPO / "crds" / "testplans.tep.dev.yaml"
# Their fields are those of the parent row (metav1.Condition; the shape of status.lastRun).
FOLDED = ("status.conditions[]", "status.history[]")
FUNCTION = re.compile(r"`([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)`")


def crd_fields() -> set[str]:
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(node: dict[str, Any], path: str) -> Iterator[str]:
        if path.startswith(FOLDED) and path not in FOLDED:
            return
        if path and not path.endswith("[]"):
            yield path
        for name, sub in (node.get("properties") or {}).items():
            yield from walk(sub, f"{path}.{name}" if path else name)
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{path}[]")

    return {field for top in ("spec", "status") for field in walk(schema["properties"][top], top)}


def field_map() -> dict[str, str]:
    """Field -> its "Handled by" cell, from section 9 of docs/design.md."""
    text = DESIGN.read_text()
    section = text.split("\n## 9. ", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} has two rows"
            rows[match.group(1)] = match.group(2)
    assert rows, "docs/design.md section 9 has no field table"
    return rows


def test_every_field_of_the_crd_is_in_the_field_map() -> None:
    missing = crd_fields() - field_map().keys()
    assert not missing, f"docs/design.md section 9 lacks these CRD fields: {', '.join(sorted(missing))}"


def test_every_row_is_a_field_of_the_crd_or_marked_coming() -> None:
    fields = crd_fields()
    for field, cell in field_map().items():
        if cell.startswith("coming"):
            assert field not in fields, (
                f"{field} is in the CRD now: name the functions that handle it in docs/design.md section 9"
            )
            assert not FUNCTION.search(cell)
        else:
            assert field in fields, f"docs/design.md section 9 maps {field}, which the CRD does not have"


def test_every_function_of_the_field_map_exists() -> None:
    named = 0
    for field, cell in field_map().items():
        if cell.startswith("coming"):
            continue
        functions = FUNCTION.findall(cell)
        assert functions, f"{field}: no module:function in {cell!r}"
        for module_name, attribute in functions:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                assert hasattr(target, part), f"{field}: {module_name}:{attribute} does not exist"
                target = getattr(target, part)
            assert callable(target), f"{field}: {module_name}:{attribute} is not a function"
            named += 1
    assert named > len(crd_fields())  # most fields have more than one


def test_the_field_map_check_sees_a_missing_function() -> None:
    cell = "`tep_operator.plan:read_plan`, `tep_operator.plan:no_such_function`"
    module_name, attribute = FUNCTION.findall(cell)[1]
    assert not hasattr(importlib.import_module(module_name), attribute)


def _docs() -> list[pathlib.Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted(REPO.glob("*/README.md"))]


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_documentation_links_stay_inside_the_repository(doc: pathlib.Path) -> None:
    for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", doc.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # a URL
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(REPO), f"{doc.name} links to {target}, outside the repository"
        assert path.exists(), f"{doc.name} links to {target}, which does not exist"
