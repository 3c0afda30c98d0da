"""`tep serve` and `tep report --open` as a user types them."""

import os
import subprocess
import sys

from tests.browser.conftest import TEP, start_server


def test_report_open_prints_the_port_forward_line_and_opens_the_plan(tmp_path):
    opened = tmp_path / "opened"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    done = subprocess.run(
        [str(TEP), "report", "smoke", "-n", "qa", "--open"],
        env=os.environ | {"BROWSER": str(browser)},  # webbrowser runs $BROWSER when set
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "kubectl -n tep-system port-forward svc/tep-operator-reports 8000:80",
        "http://127.0.0.1:8000/plans/qa/smoke",
    ]
    assert opened.read_text().strip() == "http://127.0.0.1:8000/plans/qa/smoke"


def test_serve_refuses_a_missing_folder(tmp_path):
    done = subprocess.run(
        [str(TEP), "serve", "--reports", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert done.returncode == 2 and "is not a folder" in done.stderr


def test_serve_defaults_to_tep_reports_beside_it(tmp_path):
    (tmp_path / "tep-reports" / "qa" / "p").mkdir(parents=True)
    done = subprocess.run([str(TEP), "serve", "--help"], capture_output=True, text=True)
    assert "--reports" in done.stdout and "--host" in done.stdout and "--port" in done.stdout
    proc, server = start_server(tmp_path / "tep-reports")
    try:
        assert [p["plan"] for p in server.json("/api/plans")["plans"]] == ["p"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_server_imports_neither_kopf_nor_kubernetes():
    code = (
        "import sys, tep_operator.cli, tep_operator.browser.app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
