"""Reading and validating a TestPlan: a dict in, a `Plan` or a `PlanError` out.

Every problem names the field it is in and says what is wrong, because the message lands
in the plan's status and in an Event where a user reads it. All problems are collected,
so one edit fixes them all. Defaults are applied here too: an API server applies the
CRD's defaults, but a TestPlan file run with `tep run --local` never meets one.
"""

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from croniter import croniter

from tep_operator import runnerenv
from tep_operator.names import ANNOTATION_RUN_REQUESTED_AT

DISTRIBUTIONS = ("load", "loadscope", "loadfile", "loadgroup", "worksteal", "no")
ORDERS = ("duration", "collection")  # spec.pytest.order: tep_runner.ordering
CONCURRENCY_POLICIES = ("Forbid", "Replace", "Allow")
# The descriptors Kubernetes' CronJob accepts; @reboot and @every are not among them.
CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DAYS = "sun|mon|tue|wed|thu|fri|sat"
# What Kubernetes' cron parser takes in each field; croniter also takes L, W, # and H,
# which the CronJob controller would reject.
_CRON_FIELD_SYNTAX = (
    re.compile(r"^[0-9*,/-]+$"),
    re.compile(r"^[0-9*,/-]+$"),
    re.compile(r"^([0-9*,/-]+|\?)$"),
    re.compile(rf"^([0-9*,/-]|{_MONTHS})+$", re.IGNORECASE),
    re.compile(rf"^(([0-9*,/-]|{_DAYS})+|\?)$", re.IGNORECASE),
)


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    reason: str  # CamelCase, for the Valid condition and the Event

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PlanError(ValueError):
    """A TestPlan that cannot be scheduled, with every problem found in it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def reason(self) -> str:
        return self.problems[0].reason


@dataclass(frozen=True, slots=True)
class Source:
    kind: str  # configMap | git | image
    name: str = ""  # configMap
    url: str = ""  # git
    ref: str = "main"  # git
    path: str = "."  # git: folder in the repository; image: absolute path
    secret_name: str = ""  # git


# spec.notify (docs/notifications.md)
NOTIFY_KINDS = ("webhook", "slack", "teams", "dingtalk", "feishu", "wecom")
NOTIFY_TRIGGERS = ("Failed", "Error", "Recovered", "Flaky", "Missed", "Always")
NOTIFY_DEFAULT_ON = ("Failed", "Error", "Recovered")
NOTIFY_FIELDS = ("name", "kind", "urlFrom", "signingSecretFrom", "on", "after")
NOTIFY_SIGNED_KINDS = ("dingtalk", "feishu")  # robots whose "signature" security setting we support
_TARGET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class NotifyTarget:
    """Where and when to send a notification; the URL itself is only ever in the Secret."""

    name: str
    kind: str
    secret_name: str
    secret_key: str
    on: tuple[str, ...] = NOTIFY_DEFAULT_ON
    after: int = 1
    signing_secret_name: str = ""  # dingtalk/feishu: the robot's signing secret, also in a Secret
    signing_secret_key: str = ""


@dataclass(frozen=True, slots=True)  # one per plan stays in memory (seen.py): no __dict__ each
class Plan:
    name: str
    namespace: str
    crontab: str
    source: Source
    uid: str = ""
    generation: int = 0
    time_zone: str = ""
    enabled: bool = True
    env: tuple[Mapping[str, Any], ...] = ()
    env_from: tuple[Mapping[str, Any], ...] = ()
    image: str = ""
    args: tuple[str, ...] = ()
    workers: str = "auto"  # "auto", "adaptive" or a whole number >= 1, as text
    max_workers: int | None = None  # with workers: adaptive; None: 4 x the CPU limit (tep_runner.adaptive)
    order: str = "duration"  # the tests' order for xdist: longest first once durations are recorded
    dist: str = ""  # "": the suite's own (its addopts), else xdist's load
    reruns: int = 0
    timeout_seconds: int | None = None  # per test, through pytest-timeout; None: the suite's own setting
    config_file: str = ""  # pytest -c, relative to the source root; "" lets pytest find it
    root_dir: str = ""  # pytest --rootdir, relative to the source root; "" lets pytest find it
    shards: int = 1
    resources: Mapping[str, Any] = field(default_factory=dict)
    active_deadline_seconds: int = 3600
    concurrency_policy: str = "Forbid"
    starting_deadline_seconds: int = 300
    claim_name: str = ""
    keep_last: int = 20
    max_age_days: int = 7
    history_limit: int = 10
    service_account_name: str = ""
    pod_template: Mapping[str, Any] = field(default_factory=dict)
    run_requested_at: str = ""
    notify: tuple[NotifyTarget, ...] = ()


def parse_cpu(quantity: object) -> float:
    """A Kubernetes CPU quantity ("500m", "2", 1.5) in cores."""
    text = str(quantity).strip()
    try:
        if text.endswith("m"):
            return float(Decimal(text[:-1]) / 1000)
        return float(Decimal(text))
    except InvalidOperation:
        raise ValueError(f"{quantity!r} is not a CPU quantity (like 500m or 2)") from None


def cpu_workers(resources: Mapping[str, Any]) -> int | None:
    """Workers for `-n auto` from a CPU limit, rounded up; None without a limit."""
    limit = (resources.get("limits") or {}).get("cpu")
    if limit is None:
        return None
    return max(1, math.ceil(parse_cpu(limit)))


@functools.cache  # pure, and every event of every plan asks again
def crontab_problem(crontab: str) -> str | None:
    """What is wrong with a crontab, as Kubernetes' CronJob sees it; None if nothing."""
    expr = crontab.strip()
    if not expr:
        return "must not be empty"
    if expr.upper().startswith(("TZ=", "CRON_TZ=")):
        return "a time zone inside the crontab is not supported by Kubernetes; use spec.timeZone"
    if expr.startswith("@"):
        if expr.lower() in CRON_MACROS:
            return None
        return f"{expr!r} is not one of {', '.join(CRON_MACROS)}"
    fields = expr.split()
    if len(fields) != len(CRON_FIELDS):
        hint = " (a seconds field is not supported)" if len(fields) == 6 else ""
        return f"{expr!r} has {len(fields)} fields; Kubernetes takes 5 ({' '.join(CRON_FIELDS)}){hint}"
    for name, text, syntax in zip(CRON_FIELDS, fields, _CRON_FIELD_SYNTAX, strict=True):
        if not syntax.match(text):
            return f"{name} field {text!r} uses syntax Kubernetes' CronJob does not accept"
    try:
        croniter(expr)
    except (ValueError, KeyError) as exc:
        return f"{expr!r} is not a valid cron expression ({exc})"
    return None


class _Reader:
    """Pulls typed fields out of a spec, collecting problems instead of raising at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, reason: str = "InvalidField") -> None:
        self.problems.append(Problem(path, message, reason))

    def mapping(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"must be an object, not {type(value).__name__}")
            return {}
        return value

    def string(self, parent: Mapping[str, Any], key: str, path: str, default: str = "") -> str:
        value = parent.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(path, f"must be a string, not {type(value).__name__}")
            return default
        return value

    def boolean(self, parent: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = parent.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(path, f"must be true or false, not {value!r}")
            return default
        return value

    def integer(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        default: int,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        value = parent.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(path, f"must be a whole number, not {value!r}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.problem(path, f"must be {bounds}, not {value}", "ValueOutOfRange")
            return default
        return value

    def objects(self, parent: Mapping[str, Any], key: str, path: str) -> tuple[Mapping[str, Any], ...]:
        value = parent.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
            self.problem(path, "must be a list of objects")
            return ()
        return tuple(value)

    def choice(
        self, parent: Mapping[str, Any], key: str, path: str, default: str, choices: Sequence[str]
    ) -> str:
        value = self.string(parent, key, path, default)
        if value not in choices:
            self.problem(path, f"{value!r} is not one of {', '.join(choices)}")
            return default
        return value


def _read_source(r: _Reader, spec: Mapping[str, Any], image: str) -> Source:
    source = r.mapping(spec, "source", "spec.source")
    kinds = [kind for kind in ("configMap", "git", "image") if source.get(kind) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        r.problem(
            "spec.source", f"set exactly one of configMap, git, image (found: {found})", "InvalidSource"
        )
        return Source(kind="configMap")
    kind = kinds[0]
    body = r.mapping(source, kind, f"spec.source.{kind}")
    if kind == "configMap":
        name = r.string(body, "name", "spec.source.configMap.name")
        if not name:
            r.problem("spec.source.configMap.name", "is required", "InvalidSource")
        return Source(kind=kind, name=name)
    if kind == "git":
        url = r.string(body, "url", "spec.source.git.url")
        if not url:
            r.problem("spec.source.git.url", "is required", "InvalidSource")
        path = r.string(body, "path", "spec.source.git.path", ".")
        if path.startswith("/") or ".." in path.split("/"):
            r.problem("spec.source.git.path", f"{path!r} must be a relative path inside the repository")
        return Source(
            kind=kind,
            url=url,
            ref=r.string(body, "ref", "spec.source.git.ref", "main") or "main",
            path=path or ".",
            secret_name=r.string(body, "secretName", "spec.source.git.secretName"),
        )
    path = r.string(body, "path", "spec.source.image.path")
    if not path.startswith("/"):
        r.problem(
            "spec.source.image.path", f"{path!r} must be an absolute path inside the image", "InvalidSource"
        )
    if not image:
        r.problem(
            "spec.image", "is required with source.image: the image that holds the tests", "InvalidSource"
        )
    return Source(kind=kind, path=path)


def _read_workers(r: _Reader, pytest_spec: Mapping[str, Any]) -> str:
    value = pytest_spec.get("workers", "auto")
    text = str(value).strip() if not isinstance(value, bool) else ""
    if text in ("auto", "adaptive") or (text.isdigit() and int(text) >= 1):
        return str(int(text)) if text.isdigit() else text
    r.problem(
        "spec.pytest.workers",
        f'must be "auto", "adaptive" or a whole number >= 1, not {value!r}',
        "InvalidWorkers",
    )
    return "auto"


def _read_max_workers(r: _Reader, pytest_spec: Mapping[str, Any]) -> int | None:
    value = r.integer(pytest_spec, "maxWorkers", "spec.pytest.maxWorkers", 0, 1, 1000) or None
    if value is not None and str(pytest_spec.get("workers", "auto")) != "adaptive":
        r.problem("spec.pytest.maxWorkers", 'applies only with workers: "adaptive"', "InvalidWorkers")
    return value


def _read_source_path(r: _Reader, pytest_spec: Mapping[str, Any], key: str) -> str:
    """A path inside the suite's source (spec.pytest.configFile, rootDir): relative, no '..'."""
    path = f"spec.pytest.{key}"
    value = r.string(pytest_spec, key, path)
    if value.startswith("/") or ".." in value.split("/") or "\0" in value:
        r.problem(path, f"{value!r} must be a relative path inside the source, without '..'")
        return ""
    return value


def _read_env(r: _Reader, spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    env = r.objects(spec, "env", "spec.env")
    for index, var in enumerate(env):
        name = var.get("name")
        if not isinstance(name, str) or not name:
            r.problem(f"spec.env[{index}].name", "is required")
        elif name in runnerenv.RESERVED:
            r.problem(f"spec.env[{index}].name", f"{name} is set by the operator and cannot be overridden")
    return env


def _read_resources(r: _Reader, spec: Mapping[str, Any]) -> Mapping[str, Any]:
    resources = r.mapping(spec, "resources", "spec.resources")
    for kind in ("limits", "requests"):
        cpu = r.mapping(resources, kind, f"spec.resources.{kind}").get("cpu")
        if cpu is not None:
            try:
                parse_cpu(cpu)
            except ValueError as exc:
                r.problem(f"spec.resources.{kind}.cpu", str(exc))
    return resources


def _unknown_fields(r: _Reader, value: Mapping[str, Any], known: Sequence[str], path: str) -> None:
    for key in value:
        if key not in known:
            r.problem(f"{path}.{key}", f"is not a known field (known: {', '.join(known)})", "UnknownField")


def _secret_key_ref(r: _Reader, parent: Mapping[str, Any], key: str, path: str, what: str) -> tuple[str, str]:
    """(name, key) of `<key>: {secretKeyRef: {name, key}}`, required."""
    value = r.mapping(parent, key, path)
    _unknown_fields(r, value, ("secretKeyRef",), path)
    ref = r.mapping(value, "secretKeyRef", f"{path}.secretKeyRef")
    _unknown_fields(r, ref, ("name", "key"), f"{path}.secretKeyRef")
    found = [r.string(ref, part, f"{path}.secretKeyRef.{part}") for part in ("name", "key")]
    for part, text in zip(("name", "key"), found, strict=True):
        if not text:
            r.problem(
                f"{path}.secretKeyRef.{part}",
                f"is required: {what} lives only in a key of a Secret in the plan's namespace",
                "InvalidNotify",
            )
    return found[0], found[1]


def _read_notify_target(r: _Reader, target: Mapping[str, Any], path: str) -> NotifyTarget:
    bare_on = [key for key in target if str(key).lower() == "true"]  # YAML 1.1 reads a bare `on` as true
    if bare_on:
        r.problem(f"{path}.on", 'write the key in quotes, "on": a bare on is read as true by YAML 1.1')
        target = {key: value for key, value in target.items() if key not in bare_on}
    _unknown_fields(r, target, NOTIFY_FIELDS, path)
    name = r.string(target, "name", f"{path}.name")
    if not name:
        r.problem(f"{path}.name", "is required", "InvalidNotify")
    elif len(name) > 63 or not _TARGET_NAME.match(name):
        r.problem(f"{path}.name", f"{name!r} must be a DNS label (a-z, 0-9, -; at most 63)", "InvalidNotify")
    kind = r.string(target, "kind", f"{path}.kind")
    if kind not in NOTIFY_KINDS:
        found = f"{kind!r} is not" if kind else "is required:"
        r.problem(f"{path}.kind", f"{found} one of {', '.join(NOTIFY_KINDS)}", "InvalidNotify")
    secret = _secret_key_ref(r, target, "urlFrom", f"{path}.urlFrom", "the URL")
    signing = ("", "")
    if target.get("signingSecretFrom") is not None:
        signing = _secret_key_ref(r, target, "signingSecretFrom", f"{path}.signingSecretFrom", "the secret")
        if kind in NOTIFY_KINDS and kind not in NOTIFY_SIGNED_KINDS:
            r.problem(
                f"{path}.signingSecretFrom",
                f"only for kinds {', '.join(NOTIFY_SIGNED_KINDS)}, not {kind}",
                "InvalidNotify",
            )
    on = target.get("on", list(NOTIFY_DEFAULT_ON))
    if not isinstance(on, list) or not on or not all(isinstance(t, str) for t in on):
        r.problem(f"{path}.on", f"must be a non-empty list of {', '.join(NOTIFY_TRIGGERS)}", "InvalidNotify")
        on = list(NOTIFY_DEFAULT_ON)
    for index, trigger in enumerate(on):
        if trigger not in NOTIFY_TRIGGERS:
            r.problem(
                f"{path}.on[{index}]",
                f"{trigger!r} is not one of {', '.join(NOTIFY_TRIGGERS)}",
                "InvalidNotify",
            )
    return NotifyTarget(
        name=name,
        kind=kind,
        secret_name=secret[0],
        secret_key=secret[1],
        on=tuple(dict.fromkeys(on)),
        after=r.integer(target, "after", f"{path}.after", 1, 1, 1000),
        signing_secret_name=signing[0],
        signing_secret_key=signing[1],
    )


def _read_notify(r: _Reader, spec: Mapping[str, Any]) -> tuple[NotifyTarget, ...]:
    targets = tuple(
        _read_notify_target(r, target, f"spec.notify[{index}]")
        for index, target in enumerate(r.objects(spec, "notify", "spec.notify"))
    )
    seen: set[str] = set()
    for index, target in enumerate(targets):
        if target.name and target.name in seen:
            r.problem(f"spec.notify[{index}].name", f"{target.name!r} is used twice", "InvalidNotify")
        seen.add(target.name)
    return targets


def read_plan(body: Mapping[str, Any]) -> Plan:
    """A TestPlan object (as the API server or a YAML file gives it) as a `Plan`.

    Raises `PlanError` listing every problem; nothing is half-read.
    """
    r = _Reader()
    metadata = body.get("metadata") or {}
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise PlanError([Problem("spec", "is required", "InvalidSpec")])

    crontab = r.string(spec, "crontab", "spec.crontab")
    if "crontab" not in spec:
        r.problem("spec.crontab", "is required", "InvalidCrontab")
    else:
        problem = crontab_problem(crontab)
        if problem:
            r.problem("spec.crontab", problem, "InvalidCrontab")

    time_zone = r.string(spec, "timeZone", "spec.timeZone")
    if time_zone:
        try:
            if time_zone == "Local":
                raise zoneinfo.ZoneInfoNotFoundError
            zoneinfo.ZoneInfo(time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            r.problem("spec.timeZone", f"{time_zone!r} is not a known IANA time zone", "InvalidTimeZone")

    image = r.string(spec, "image", "spec.image")
    pytest_spec = r.mapping(spec, "pytest", "spec.pytest")
    args = pytest_spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        r.problem("spec.pytest.args", "must be a list of strings")
        args = []
    reports = r.mapping(spec, "reports", "spec.reports")
    annotations = metadata.get("annotations") or {}

    plan = Plan(
        name=str(metadata.get("name", "")),
        namespace=str(metadata.get("namespace") or "default"),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        crontab=crontab.strip(),
        time_zone=time_zone,
        enabled=r.boolean(spec, "enabled", "spec.enabled", True),
        env=_read_env(r, spec),
        env_from=r.objects(spec, "envFrom", "spec.envFrom"),
        source=_read_source(r, spec, image),
        image=image,
        args=tuple(args),
        workers=_read_workers(r, pytest_spec),
        max_workers=_read_max_workers(r, pytest_spec),
        order=r.choice(pytest_spec, "order", "spec.pytest.order", "duration", ORDERS),
        # Unset: the suite's own --dist (its addopts) decides, as in bare pytest.
        dist=r.choice(pytest_spec, "dist", "spec.pytest.dist", "load", DISTRIBUTIONS)
        if "dist" in pytest_spec
        else "",
        reruns=r.integer(pytest_spec, "reruns", "spec.pytest.reruns", 0, 0, 10),
        timeout_seconds=r.integer(pytest_spec, "timeoutSeconds", "spec.pytest.timeoutSeconds", 0, 1) or None,
        config_file=_read_source_path(r, pytest_spec, "configFile"),
        root_dir=_read_source_path(r, pytest_spec, "rootDir"),
        shards=r.integer(spec, "shards", "spec.shards", 1, 1, 100),
        resources=_read_resources(r, spec),
        active_deadline_seconds=r.integer(
            spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", 3600, 1
        ),
        concurrency_policy=r.choice(
            spec, "concurrencyPolicy", "spec.concurrencyPolicy", "Forbid", CONCURRENCY_POLICIES
        ),
        starting_deadline_seconds=r.integer(
            spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", 300, 10
        ),
        claim_name=r.string(reports, "claimName", "spec.reports.claimName"),
        keep_last=r.integer(reports, "keepLast", "spec.reports.keepLast", 20, 1),
        max_age_days=r.integer(reports, "maxAgeDays", "spec.reports.maxAgeDays", 7, 1),
        history_limit=r.integer(spec, "historyLimit", "spec.historyLimit", 10, 0, 100),
        service_account_name=r.string(spec, "serviceAccountName", "spec.serviceAccountName"),
        pod_template=r.mapping(spec, "podTemplate", "spec.podTemplate"),
        run_requested_at=str(annotations.get(ANNOTATION_RUN_REQUESTED_AT, "")),
        notify=_read_notify(r, spec),
    )
    if not plan.name:
        r.problem("metadata.name", "is required")
    if r.problems:
        raise PlanError(r.problems)
    return plan
