"""One pytest-html report for a sharded run, made from the shards' own reports.

pytest-html 4 renders its page from a Jinja2 template, with every result row in the JSON of the
`data-jsonblob` attribute (its app.js builds the table from it, and filters by each row's `result`). The
merged page is the same template rendered with the shards' rows joined: a Shard column added, the outcome
totals counted from the joined rows, the run's wall time, the flaky tests marked. pytest-html (4.2) repeats a
test's rerun rows at each attempt; the JUnit XML holds one <testcase> per attempt, so each test keeps only
its last `reruns` rerun rows. A collection error, which every shard reports, is kept once.
"""

from __future__ import annotations

import datetime
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_html
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pytest_html.basereport import _format_duration

from tep_runner.history import junit_attempts

RESOURCES = Path(pytest_html.__file__).parent / "resources"
RERUN = "rerun"
# The outcomes pytest-html's run count counts (BaseReport._run_count).
_RUN_COUNT = ("passed", "failed", "xpassed", "xfailed")
_BLOB = re.compile(r'data-jsonblob="([^"]*)"')
_HEAD = re.compile(r'<thead id="results-table-head">\s*<tr>(.*?)</tr>', re.S)
_TH = re.compile(r"<th\b.*?</th>", re.S)
_STYLE = re.compile(r'<style type="text/css">(.*?)</style>', re.S)
_FILTER = re.compile(r'data-test-result="(\w+)"[^>]*>\s*<span class="\w+">\d+ ([^<]*?),?</span>')
_RESULT_CELL = re.compile(r'(<td class="col-result">.*?)(</td>)', re.S)


@dataclass(frozen=True)
class ShardReport:
    shard: int
    html: str  # the shard's report.html
    # node id -> rerun attempts (reruns_from_junit); None: unknown, the rows are kept as they are
    reruns: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Page:
    """What a pytest-html page holds: its data, its table head, its style, its outcome labels in order."""

    data: dict[str, Any]
    head: list[str]
    css: str
    labels: dict[str, str]


def parse(text: str) -> Page:
    blob = _BLOB.search(text)
    if not blob:
        raise ValueError("not a pytest-html 4 report: no data-jsonblob")
    head = _HEAD.search(text)
    style = _STYLE.search(text)
    return Page(
        data=json.loads(html.unescape(blob.group(1))),
        head=_TH.findall(head.group(1)) if head else [],
        css=style.group(1) if style else (RESOURCES / "style.css").read_text(),
        labels={key: label for key, label in _FILTER.findall(text)},
    )


def reruns_from_junit(xml_text: str) -> dict[str, int]:
    """node id -> rerun attempts: pytest-rerunfailures leaves one <testcase> per attempt."""
    return {key: len(cases) - 1 for key, cases in junit_attempts(xml_text).items() if len(cases) > 1}


def merge(shards: Sequence[ShardReport], duration_seconds: float, summary_lines: Sequence[str] = ()) -> str:
    """The run's self-contained report.html."""
    pages = [(s, parse(s.html)) for s in sorted(shards, key=lambda s: s.shard)]
    first = pages[0][1]
    column = _shard_column(first.head)
    head = [
        *first.head[:column],
        '<th class="sortable" data-column-type="shard">Shard</th>',
        *first.head[column:],
    ]
    tests: dict[str, list[dict[str, Any]]] = {}
    flaky: list[str] = []
    for shard, page in pages:
        for test, rows in page.data.get("tests", {}).items():
            if test in tests:  # a collection error: every shard collects the whole suite
                continue
            kept = _rows(rows, None if shard.reruns is None else shard.reruns.get(test, 0))
            if _is_flaky(kept):
                flaky.append(test)
                kept[-1] = _marked(kept[-1])
            tests[test] = [_with_shard(row, shard.shard, column) for row in kept]
    labels = dict(first.labels)  # pytest-html's outcomes in its order, then any a plugin added
    labels.update({k: k.capitalize() for row in _all(tests) if (k := _outcome(row)) not in labels})
    counts = dict.fromkeys(labels, 0)
    for row in _all(tests):
        counts[_outcome(row)] += 1
    counted = sum(counts.get(k, 0) for k in _RUN_COUNT)
    took = _format_duration(duration_seconds)
    data = {**first.data, "tests": tests, "title": first.data.get("title", "report.html")}
    summary = [*summary_lines]
    if flaky:
        summary.append(f"{len(flaky)} flaky (failed, then passed on a rerun): " + ", ".join(flaky))
    now = datetime.datetime.now()
    rendered: str = _template().render(
        title=data["title"],
        date=now.strftime("%d-%b-%Y"),
        time=now.strftime("%H:%M:%S"),
        version=pytest_html.__version__,
        styles=first.css + "\n.col-result .tep-flaky{color:#b8860b;font-weight:bold}",
        run_count=f"{counted} {'tests' if counted != 1 else 'test'} took {took}.",
        running_state="finished",
        self_contained=True,
        outcomes={key: {"label": label, "value": counts[key]} for key, label in labels.items()},
        test_data=json.dumps(data),
        table_head=head,
        additional_summary={
            "prefix": [f"<p>{html.escape(line)}</p>" for line in summary],
            "summary": [],
            "postfix": [],
        },
    )
    return rendered


def _template() -> Any:
    # As pytest_html.util._read_template does.
    env = Environment(
        loader=FileSystemLoader([RESOURCES]), autoescape=select_autoescape(enabled_extensions=("jinja2",))
    )
    return env.get_template("index.jinja2")


def _shard_column(head: Sequence[str]) -> int:
    """After the Duration column (else last)."""
    for i, cell in enumerate(head):
        if 'data-column-type="duration"' in cell:
            return i + 1
    return len(head)


def _outcome(row: Mapping[str, Any]) -> str:
    return str(row.get("result", "")).lower()


def _all(tests: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for rows in tests.values() for row in rows]


def _rows(rows: list[dict[str, Any]], reruns: int | None) -> list[dict[str, Any]]:
    """The test's rows with its rerun rows cut to the last `reruns` (pytest-html repeats them)."""
    if reruns is None:
        return [dict(row) for row in rows]
    rerun_rows = [i for i, row in enumerate(rows) if _outcome(row) == RERUN]
    keep = set(rerun_rows[len(rerun_rows) - min(reruns, len(rerun_rows)) :]) if reruns else set()
    return [dict(row) for i, row in enumerate(rows) if _outcome(row) != RERUN or i in keep]


def _is_flaky(rows: Sequence[Mapping[str, Any]]) -> bool:
    return len(rows) > 1 and _outcome(rows[-1]) == "passed" and any(_outcome(r) == RERUN for r in rows)


def _marked(row: dict[str, Any]) -> dict[str, Any]:
    """The result cell says flaky; the row's `result` (what app.js filters and sorts by) stays Passed."""
    cells = list(row.get("resultsTableRow", []))
    for i, cell in enumerate(cells):
        if cell.startswith('<td class="col-result">'):
            cells[i] = _RESULT_CELL.sub(r'\1 <span class="tep-flaky">(flaky)</span>\2', cell, count=1)
    return {**row, "resultsTableRow": cells, "flaky": True}


def _with_shard(row: dict[str, Any], shard: int, column: int) -> dict[str, Any]:
    cells = list(row.get("resultsTableRow", []))
    cells.insert(column, f'<td class="col-shard">{shard}</td>')
    return {**row, "resultsTableRow": cells, "shard": str(shard)}
