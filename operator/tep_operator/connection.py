"""Where the Kubernetes API is and who we are to it: a kubeconfig, or the pod's service account.

The subset of kubeconfig that clusters hand out: a server with its CA (a file or inline data)
or `insecure-skip-tls-verify`; a user with a token or token file, client certificate and key
(files or inline data), a username and password, an `exec` credential plugin (EKS, GKE, AKS's
kubelogin...) or an `auth-provider`'s access token; the context's namespace. Relative paths
are read against the kubeconfig's folder, as kubectl does. In a pod: the service account's
token (re-read, since Kubernetes rotates it), CA and namespace. Both the client (tep_operator.client)
and kopf's login (tep_operator.runtime) use one `Connection`: one identity.
"""

import base64
import dataclasses
import datetime as dt
import json
import os
import pathlib
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import yaml

SERVICE_ACCOUNT = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60  # a projected token is renewed well before it expires (at 80 % of its life)
EXEC_EARLY_SECONDS = 30  # an exec credential is asked for again this long before it expires


class KubeconfigError(Exception):
    """No cluster configured, or a kubeconfig we cannot use."""


@dataclasses.dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's `exec`: a command that prints an ExecCredential."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    cwd: str | None = None


class _Answer(NamedTuple):
    """What a token file or an exec plugin said, and until when it holds (time.monotonic())."""

    token: str | None
    cert_file: str | None
    key_file: str | None
    until: float


@dataclasses.dataclass(eq=False)
class Connection:
    server: str
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec_plugin: ExecPlugin | None = None
    namespace: str | None = None
    _answer: _Answer | None = dataclasses.field(default=None, repr=False)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def bearer_token(self) -> str | None:
        """The token to send now: the file's (re-read every minute), the plugin's (asked again
        before it expires), or the fixed one."""
        if self.token_file or self.exec_plugin:
            return self._fresh().token
        return self.token

    def client_certificate(self) -> tuple[str | None, str | None]:
        """(certificate file, key file) to present: the plugin's if it gives one (as it
        answered when the client was made), else the kubeconfig's."""
        if self.exec_plugin:
            answer = self._fresh()
            if answer.cert_file and answer.key_file:
                return answer.cert_file, answer.key_file
        return self.cert_file, self.key_file

    def _fresh(self) -> _Answer:
        with self._lock:
            if self._answer is None or time.monotonic() >= self._answer.until:
                self._answer = (
                    _run_exec(self.exec_plugin) if self.exec_plugin else _read_token(self.token_file)
                )
            return self._answer


def _read_token(path: str | None) -> _Answer:
    try:
        token = pathlib.Path(str(path)).read_text().strip()
    except OSError as exc:
        raise KubeconfigError(f"cannot read the token file {path}: {exc}") from exc
    return _Answer(token, None, None, time.monotonic() + TOKEN_REREAD_SECONDS)


def load(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """The given kubeconfig, else the pod's service account, else $KUBECONFIG or ~/.kube/config."""
    if kubeconfig:
        return from_kubeconfig(kubeconfig_paths(kubeconfig), context)
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").exists():
        return in_cluster()
    return from_kubeconfig(default_kubeconfigs(), context)


def default_kubeconfigs() -> list[pathlib.Path]:
    """$KUBECONFIG, else ~/.kube/config."""
    return kubeconfig_paths(os.environ.get("KUBECONFIG", "")) or [pathlib.Path("~/.kube/config").expanduser()]


def kubeconfig_paths(value: str) -> list[pathlib.Path]:
    """A kubeconfig setting as kubectl reads $KUBECONFIG: a list of files, the first to name
    a thing wins."""
    return [pathlib.Path(p).expanduser() for p in value.split(os.pathsep) if p]


def in_cluster() -> Connection:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    namespace_file = SERVICE_ACCOUNT / "namespace"
    return Connection(
        server=f"https://{host}:{port}",
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT / "token"),
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else None,
    )


def current_namespace(kubeconfig: str | None = None, context: str | None = None) -> str | None:
    """The namespace of the kubeconfig's (current or given) context, if it names one."""
    paths = kubeconfig_paths(kubeconfig) if kubeconfig else default_kubeconfigs()
    _, context_entry, _, _ = _pick(_merged(paths), context)
    namespace = context_entry.get("namespace")
    return str(namespace) if namespace else None


def from_kubeconfig(paths: list[pathlib.Path], context: str | None = None) -> Connection:
    merged = _merged(paths)
    name, context_entry, cluster, user = _pick(merged, context)
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f"the cluster of context {name!r} has no server")
    tls = _Files()
    return Connection(
        server=str(server).rstrip("/"),
        ca_file=_path(cluster, "certificate-authority"),
        ca_data=_pem(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=_path(user, "client-certificate") or tls.write(user.get("client-certificate-data")),
        key_file=_path(user, "client-key") or tls.write(user.get("client-key-data")),
        token=user.get("token") or _provider_token(user),
        token_file=_path(user, "tokenFile"),
        username=user.get("username"),
        password=user.get("password"),
        exec_plugin=_exec_plugin(user),
        namespace=context_entry.get("namespace"),
    )


def _merged(paths: list[pathlib.Path]) -> dict[str, Any]:
    """Several kubeconfigs as one: the first file to set current-context or to name an entry wins.
    Each entry remembers its file's folder, for its relative paths."""
    merged: dict[str, Any] = {"current-context": None, "contexts": {}, "clusters": {}, "users": {}}
    found = False
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise KubeconfigError(f"cannot read the kubeconfig {path}: {exc}") from exc
        found = True
        merged["current-context"] = merged["current-context"] or config.get("current-context")
        for kind, key in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
            for item in config.get(kind) or []:
                entry = dict(item.get(key) or {})
                entry["_dir"] = str(path.resolve().parent)
                merged[kind].setdefault(item.get("name"), entry)
    if not found:
        raise KubeconfigError(f"no kubeconfig at {os.pathsep.join(map(str, paths))} and not in a pod")
    return merged


def _pick(
    merged: Mapping[str, Any], context: str | None
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    name = context or merged["current-context"]
    if not name:
        raise KubeconfigError("the kubeconfig sets no current-context (and no --context was given)")
    if name not in merged["contexts"]:
        raise KubeconfigError(f"the kubeconfig has no context {name!r}")
    entry = merged["contexts"][name]
    cluster = merged["clusters"].get(entry.get("cluster"))
    if cluster is None:
        raise KubeconfigError(f"context {name!r} names cluster {entry.get('cluster')!r}, which is not there")
    user = merged["users"].get(entry.get("user"), {}) if entry.get("user") else {}
    return name, entry, cluster, user


def _path(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if not value:
        return None
    return str(pathlib.Path(entry["_dir"], os.path.expanduser(str(value))))


def _pem(data: str | None) -> str | None:
    """Inline kubeconfig data is base64 of the PEM text."""
    return base64.b64decode(data).decode() if data else None


def _provider_token(user: Mapping[str, Any]) -> str | None:
    """An `auth-provider`'s stored token (oidc's id-token, the old gcp/azure access-token),
    as kopf reads it; not refreshed."""
    config = (user.get("auth-provider") or {}).get("config") or {}
    token = config.get("id-token") or config.get("access-token")
    return str(token) if token else None


def _exec_plugin(user: Mapping[str, Any]) -> ExecPlugin | None:
    spec = user.get("exec")
    if not spec:
        return None
    return ExecPlugin(
        command=str(spec["command"]),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=tuple((str(e["name"]), str(e["value"])) for e in spec.get("env") or ()),
        api_version=str(spec.get("apiVersion") or ExecPlugin.api_version),
        cwd=user.get("_dir"),
    )


def _run_exec(plugin: ExecPlugin) -> _Answer:
    """Run the plugin (as kubectl does: its env on top of ours, KUBERNETES_EXEC_INFO set) and
    read its ExecCredential: a token and/or a client certificate, and when they expire."""
    info = {"apiVersion": plugin.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        done = subprocess.run(
            [plugin.command, *plugin.args], env=env, cwd=plugin.cwd, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        status = json.loads(done.stdout).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise KubeconfigError(f"the kubeconfig's exec plugin {plugin.command} failed: {detail}") from exc
    expires = status.get("expirationTimestamp")
    until = time.monotonic() + 3600 * 24 * 365
    if expires:
        left = dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)
        until = time.monotonic() + max(0.0, left.total_seconds() - EXEC_EARLY_SECONDS)
    files = _Files()
    cert = files.write_pem(status.get("clientCertificateData"))
    key = files.write_pem(status.get("clientKeyData"))
    return _Answer(status.get("token"), cert, key, until)


class _Files:
    """Inline certificates and keys as files (Python's TLS loads a certificate chain only from
    files), readable by us alone, removed when the process ends."""

    _dir: tempfile.TemporaryDirectory[str] | None = None

    def write(self, data: str | None) -> str | None:
        return self.write_pem(_pem(data))

    def write_pem(self, pem: str | None) -> str | None:
        if not pem:
            return None
        if _Files._dir is None:
            _Files._dir = tempfile.TemporaryDirectory(prefix="tep-tls-")
        fd, path = tempfile.mkstemp(dir=_Files._dir.name, suffix=".pem")
        with os.fdopen(fd, "w") as file:
            file.write(pem)
        return path
