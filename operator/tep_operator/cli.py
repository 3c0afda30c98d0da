"""`tep`, also `kubectl tep`: run the operator, run a plan (locally or now on the cluster),
see plans' status and where their reports are."""

import argparse
import dataclasses
import datetime as dt
import os
import pathlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tep_operator import names
from tep_operator.browser import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REPORTS
from tep_operator.config import ConfigError, config_from_env, parse_reports_url, parse_resources

EXIT_BY_RESULT = {"Passed": 0, "Failed": 1, "Error": 2}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    op = commands.add_parser("operator", help="run the operator (also: python -m tep_operator)")
    op.add_argument(
        "--namespace", "-n", action="append", default=None, help="watch this namespace (repeatable)"
    )
    op.add_argument("--runner-image", help="default runner image")
    op.add_argument("--runner-image-pull-policy", choices=["Always", "IfNotPresent", "Never"])
    op.add_argument("--reports-claim", help="default PersistentVolumeClaim for reports")
    op.add_argument("--runner-resources", help="default runner resources, JSON ResourceRequirements")
    op.add_argument("--liveness-port", type=int, help="port of /healthz (0: off)")
    op.add_argument("--metrics-port", type=int, help="port of /metrics (0: off)")
    op.add_argument("--resync-seconds", type=float, help="how often every plan is re-checked")
    op.add_argument("--reports-url", help="base URL of the report browser, for links in notifications")
    op.add_argument("--notify-timeout-seconds", type=float, help="seconds one notification request may take")
    op.add_argument("--notify-retry-seconds", type=float, help="seconds a notification is retried for")
    op.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig file")
    op.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    run = commands.add_parser(
        "run", help="run a plan now: locally (--local -f PLAN.yaml) or on the cluster (PLAN)"
    )
    run.add_argument("plan", nargs="?", help="the TestPlan's name (cluster run)")
    run.add_argument("--local", action="store_true", help="run on this machine, no cluster needed")
    run.add_argument("-f", "--file", type=pathlib.Path, help="the TestPlan YAML file (with --local)")
    run.add_argument(
        "--tests",
        type=pathlib.Path,
        help="the suite's source: a ConfigMap's folder, a git checkout (pytest runs in its source.git.path) "
        "or the image path (default: tests/ beside the file)",
    )
    run.add_argument("--reports", type=pathlib.Path, default=DEFAULT_REPORTS, help="reports root")
    run.add_argument("-n", "--namespace", default=None, help="namespace of the plan (cluster run)")
    run.add_argument("--wait", action="store_true", help="wait for the result; exit with the runner's code")
    run.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")
    run.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))

    st = commands.add_parser("status", help="a table of plans and their last results")
    st.add_argument("-n", "--namespace", default=None)
    st.add_argument("-A", "--all-namespaces", action="store_true")
    st.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))

    rp = commands.add_parser("report", help="where the plan's last report is")
    rp.add_argument("plan")
    rp.add_argument("-n", "--namespace", default=None)
    rp.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    rp.add_argument(
        "--open", action="store_true", help="the reports server's port-forward line and the plan's URL"
    )
    rp.add_argument("--service", default="tep-operator-reports", help="the chart's reports Service (--open)")
    rp.add_argument("--service-namespace", default="tep-system", help="that Service's namespace (--open)")

    sv = commands.add_parser(
        "serve", help="the report browser: plans, runs, trends and reports over a folder"
    )
    sv.add_argument("--reports", type=pathlib.Path, default=DEFAULT_REPORTS, help="reports root")
    sv.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    sv.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    return parser


def _kube(kubeconfig: str | None) -> Any:
    from tep_operator import connection
    from tep_operator.client import Kube

    return Kube(connection.load(kubeconfig))


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return str(args.namespace)
    try:
        from tep_operator.connection import current_namespace

        return current_namespace(args.kubeconfig) or "default"
    except Exception:  # no kubeconfig: in-cluster or nothing; the default namespace then
        return "default"


def cmd_operator(args: argparse.Namespace) -> int:
    import logging

    from tep_operator import runtime

    overrides: dict[str, Any] = {}
    try:
        config = config_from_env(os.environ)
        if args.runner_resources is not None:
            overrides["runner_resources"] = parse_resources(args.runner_resources, "--runner-resources")
        if args.reports_url is not None:
            overrides["reports_url"] = parse_reports_url(args.reports_url, "--reports-url")
    except ConfigError as exc:
        print(f"tep operator: {exc}", file=sys.stderr)
        return 2
    for field in (
        "runner_image",
        "runner_image_pull_policy",
        "reports_claim",
        "liveness_port",
        "metrics_port",
        "resync_seconds",
        "notify_timeout_seconds",
        "notify_retry_seconds",
    ):
        if getattr(args, field) is not None:
            overrides[field] = getattr(args, field)
    if args.namespace:
        overrides["namespaces"] = tuple(args.namespace)
    config = dataclasses.replace(config, **overrides)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    runtime.run(config, _kube(args.kubeconfig))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.local:
        from tep_operator.local import LocalRunError, run_local

        if not args.file:
            print("tep run --local: give the plan with -f PLAN.yaml", file=sys.stderr)
            return 2
        try:
            return run_local(args.file, tests=args.tests, reports=args.reports, out=sys.stdout)
        except LocalRunError as exc:  # names the file and every problem in it
            print(f"tep run --local: {exc}", file=sys.stderr)
            return 2
    if not args.plan:
        print("tep run: name the plan (or use --local -f PLAN.yaml)", file=sys.stderr)
        return 2
    return request_run(
        _kube(args.kubeconfig), _namespace(args), args.plan, wait=args.wait, timeout=args.timeout
    )


def request_run(kube: Any, namespace: str, plan: str, *, wait: bool, timeout: float) -> int:
    """Set `tep.dev/run-requested-at`; with `wait`, follow the plan until that run's result."""
    # Microseconds: two requests in one second are two runs.
    request = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    kube.annotate_plan(namespace, plan, {names.ANNOTATION_RUN_REQUESTED_AT: request})
    job = names.manual_job_name(plan, request)
    print(f"tep: requested a run of {namespace}/{plan} (Job {job})")
    if not wait:
        return 0
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        status = kube.get_plan(namespace, plan).get("status") or {}
        last = status.get("lastRun") or {}
        if last.get("name") == job and last.get("result"):
            print(run_line(last))
            if last.get("reportPath"):
                print(f"tep: report: {last['reportPath']}")
            return EXIT_BY_RESULT.get(last["result"], 2)
        progress = f"phase {status.get('phase', '?')}"
        if status.get("lastRunRequest") == request and progress != shown:
            print(f"tep: {progress}")
            shown = progress
        time.sleep(2)
    print(f"tep: no result within {timeout:.0f}s", file=sys.stderr)
    return 2


def run_line(run: dict[str, Any]) -> str:
    from tep_operator.runs import counts_text

    took = run.get("durationSeconds", 0)
    return f"tep: {run.get('name')}: {run.get('result')}: {counts_text(run)} in {took}s"


STATUS_COUNTS = ("passed", "failed", "xfailed", "xpassed")  # of the last run; `kubectl describe` has all


def _speed(last: Mapping[str, Any]) -> list[str]:
    """The last run's WORKERS (all its shards'), CPU (cpuUtilization), IMBALANCE (sharded runs), or "-"."""
    cpu, imbalance = last.get("cpuUtilization"), last.get("imbalance")
    return [
        str(last.get("workers", "-")),
        f"{cpu:.0%}" if isinstance(cpu, int | float) else "-",
        f"{imbalance:.2f}" if isinstance(imbalance, int | float) else "-",
    ]


def status_rows(plans: Sequence[dict[str, Any]], all_namespaces: bool) -> list[list[str]]:
    header = [
        "NAME",
        "SCHEDULE",
        "ENABLED",
        "PHASE",
        "LAST RESULT",
        *(c.upper() for c in STATUS_COUNTS),
        "WORKERS",
        "CPU",
        "IMBALANCE",
        "NEXT RUN",
    ]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    rows = [header]
    for plan in sorted(plans, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        spec, status = plan.get("spec") or {}, plan.get("status") or {}
        last = status.get("lastRun") or {}
        row = [
            plan["metadata"]["name"],
            str(spec.get("crontab", "")),
            str(spec.get("enabled", True)).lower(),
            status.get("phase", "-"),
            last.get("result", "-"),
            *(str(last.get(count, "-")) for count in STATUS_COUNTS),
            *_speed(last),
            status.get("nextRunTime") or "-",
        ]
        if all_namespaces:
            row.insert(0, plan["metadata"].get("namespace", ""))
        rows.append(row)
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def cmd_status(args: argparse.Namespace) -> int:
    kube = _kube(args.kubeconfig)
    namespace = None if args.all_namespaces else _namespace(args)
    print(format_table(status_rows(list(kube.list_plans(namespace)), args.all_namespaces)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    namespace = _namespace(args)
    if args.open:
        return open_report(namespace, args.plan, args.service, args.service_namespace)
    plan = _kube(args.kubeconfig).get_plan(namespace, args.plan)
    last = (plan.get("status") or {}).get("lastRun") or {}
    if not last.get("reportPath"):
        print(f"tep: {args.plan} has no report yet", file=sys.stderr)
        return 1
    claim = (plan.get("spec", {}).get("reports") or {}).get(
        "claimName"
    ) or "the operator's default reports claim"
    print(f"{last['reportPath']}")
    print(f"tep: on the volume of {claim}; {run_line(last)}", file=sys.stderr)
    return 0


def open_report(namespace: str, plan: str, service: str, service_namespace: str) -> int:
    """Print how to reach the chart's reports server (templates/reports-server.yaml) and the plan's page;
    open the page when a browser is here."""
    import webbrowser

    url = f"http://127.0.0.1:{DEFAULT_PORT}/plans/{namespace}/{plan}"
    print(f"kubectl -n {service_namespace} port-forward svc/{service} {DEFAULT_PORT}:80")
    print(url)
    if webbrowser.open(url):
        print("tep: opened in a browser (the page answers once the port-forward runs)", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tep_operator.browser.app import serve

    if not args.reports.is_dir():
        print(f"tep serve: {args.reports} is not a folder (run a plan first: tep run --local -f PLAN.yaml)",
              file=sys.stderr)  # fmt: skip
        return 2
    serve(args.reports, args.host, args.port)
    return 0


COMMANDS = {
    "operator": cmd_operator,
    "run": cmd_run,
    "status": cmd_status,
    "report": cmd_report,
    "serve": cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Cluster errors end in one readable line, not a traceback: "TestPlan qa/x not found".
        from tep_operator.client import describe_error

        message = describe_error(exc)
        if message is None:
            raise
        print(f"tep {args.command}: {message}", file=sys.stderr)
        return 2
