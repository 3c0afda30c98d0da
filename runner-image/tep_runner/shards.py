"""Shards: the merge of the shards' results into the run's (balance.py splits the tests).

Each test runs in one shard, but every shard collects the whole suite: a collection error is reported
by each shard, and bare pytest reports it once. A node id in more than one shard's results is such a
report, and the merge keeps it once (htmlreport.merge does the same for report.html).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tep_runner.adaptive import PEAK_MEMORY, UTILIZATION
from tep_runner.balance import imbalance

COUNTS = (
    "total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky", "reruns", "collected",
    "workers",
)  # fmt: skip


def merge_junit(documents: Sequence[str]) -> str:
    """One <testsuites> holding every shard's <testsuite> elements, each collection error once."""
    merged = ET.Element("testsuites", name="pytest tests")
    kept: set[tuple[str, ...]] = set()
    for document in documents:
        root = ET.fromstring(document)
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for suite in suites:
            for case in suite.findall("testcase"):
                if _case(case) in kept:
                    suite.remove(case)
                    for counter in ("tests", "errors"):
                        suite.set(counter, str(int(suite.get(counter, "1")) - 1))
            kept.update(_case(case) for case in suite.findall("testcase"))
        merged.extend(suites)
    return ET.tostring(merged, encoding="unicode", xml_declaration=True)


def _case(case: ET.Element) -> tuple[str, ...]:
    """What names a <testcase>: its class, name and file."""
    return case.get("classname", ""), case.get("name", ""), case.get("file", "")


def failed_once(failed_per_shard: Iterable[Sequence[str]]) -> tuple[list[str], int]:
    """The shards' failed tests, each once, and how many repeats were dropped: the collection errors
    that more than one shard reported, to be taken off the summed `errors` and `total`."""
    failed = [test for tests in failed_per_shard for test in tests]
    once = list(dict.fromkeys(failed))
    return once, len(failed) - len(once)


def merge_summaries(summaries: Sequence[Mapping[str, Any]], report_path: str) -> dict[str, Any]:
    """The run's summary: counts summed, the duration of the slowest shard, the worst result."""
    results = [s["result"] for s in summaries]
    result = next((r for r in ("Error", "Failed") if r in results), "Passed")
    # A reason explains a shard that did not pass; the run's is theirs, each text once.
    reasons: dict[str, list[str]] = {}
    for s in summaries:
        if s["result"] == result != "Passed" and "reason" in s:
            reasons.setdefault(s["reason"], []).append(str(s["shard"]))
    failed, repeated = failed_once([s["failedTests"] for s in summaries])
    counts = {key: sum(s[key] for s in summaries) for key in COUNTS}
    counts["errors"] -= repeated
    counts["total"] -= repeated
    return {
        "result": result,
        **(
            {"reason": "; ".join(_shards_said(shards, text) for text, shards in reasons.items())}
            if reasons
            else {}
        ),
        **counts,
        "durationSeconds": max(s["durationSeconds"] for s in summaries),
        "shards": len(summaries),
        # How far the slowest shard finished after the mean one (balance.py split them by duration).
        "imbalance": imbalance([float(s["durationSeconds"]) for s in summaries]),
        **_measures(summaries),
        "reportPath": report_path,
        "failedTests": failed,
        "timedOut": [test for s in summaries for test in s.get("timedOut", [])],
        "runId": summaries[0]["runId"],
        "startTime": min(s["startTime"] for s in summaries),
    }


def _shards_said(shards: Sequence[str], text: str) -> str:
    return f"shard{'s' if len(shards) > 1 else ''} {', '.join(shards)}: {text}"


def _measures(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The pods' CPU utilisation (their mean) and peak memory per worker (the highest), when measured."""
    used = [float(s[UTILIZATION]) for s in summaries if UTILIZATION in s]
    peaks = [int(s[PEAK_MEMORY]) for s in summaries if PEAK_MEMORY in s]
    return {
        **({UTILIZATION: round(sum(used) / len(used), 3)} if used else {}),
        **({PEAK_MEMORY: max(peaks)} if peaks else {}),
    }


def index_html(run: Mapping[str, Any], summaries: Sequence[Mapping[str, Any]]) -> str:
    """The run-level report.html: totals, and each shard's own pytest-html report linked."""
    esc = html.escape
    head = "".join(f"<th>{esc(key)}</th>" for key in ("shard", "result", *COUNTS, "durationSeconds"))

    def row(s: Mapping[str, Any], label: str) -> str:
        cells = "".join(f"<td>{esc(str(s[key]))}</td>" for key in ("result", *COUNTS, "durationSeconds"))
        return f"<tr><td>{label}</td>{cells}</tr>"

    shard_rows = "".join(
        row(s, f'<a href="shard-{s["shard"]}/report.html">shard {s["shard"]}</a>') for s in summaries
    )
    failed = "".join(f"<li><code>{esc(test)}</code></li>" for test in run["failedTests"])
    reason = f"<p>{esc(run['reason'])}</p>" if "reason" in run else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(run["runId"])}</title>'
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>Run {esc(run['runId'])}: {esc(run['result'])}</h1>{reason}"
        f"<table><tr>{head}</tr>{row(run, 'all')}{shard_rows}</table>"
        f"<h2>Failed tests ({len(run['failedTests'])})</h2><ul>{failed}</ul></body></html>"
    )
