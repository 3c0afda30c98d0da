"""tep_operator.connection: kubeconfigs and the service account, as kubectl reads them."""

import base64
import os
import pathlib
import stat
import sys
import textwrap

import pytest
import yaml

from tep_operator import connection
from tep_operator.connection import KubeconfigError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_kubeconfig(
    path: pathlib.Path, *, current: str | None = "dev", users=None, clusters=None, contexts=None
):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": clusters
        if clusters is not None
        else [{"name": "c", "cluster": {"server": "https://k:6443/"}}],
        "users": users if users is not None else [{"name": "u", "user": {"token": "t0k3n"}}],
        "contexts": contexts
        if contexts is not None
        else [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "qa"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_token_user_of_the_current_context(tmp_path):
    c = connection.load(str(write_kubeconfig(tmp_path / "config")))
    assert (c.server, c.bearer_token(), c.namespace, c.insecure) == ("https://k:6443", "t0k3n", "qa", False)
    assert connection.current_namespace(str(tmp_path / "config")) == "qa"


def test_inline_certificates_become_private_files_and_relative_paths_follow_the_kubeconfig(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    users = [{"name": "u", "user": {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}}]
    clusters = [{"name": "c", "cluster": {"server": "https://k", "certificate-authority": "ca.crt"}}]
    c = connection.load(str(write_kubeconfig(folder / "config", users=users, clusters=clusters)))
    assert c.ca_file == str(folder / "ca.crt")
    cert, key = c.client_certificate()
    assert pathlib.Path(cert).read_text() == "CERT" and pathlib.Path(key).read_text() == "KEY"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    clusters = [
        {"name": "c", "cluster": {"server": "https://k", "certificate-authority-data": b64("PEM CA")}}
    ]
    c = connection.load(str(write_kubeconfig(folder / "inline", clusters=clusters)))
    assert (c.ca_file, c.ca_data) == (None, "PEM CA")


def test_a_list_of_kubeconfigs_the_first_to_name_a_thing_wins_and_a_context_can_be_chosen(tmp_path):
    first = write_kubeconfig(tmp_path / "a", users=[{"name": "u", "user": {"token": "first"}}])
    second = write_kubeconfig(
        tmp_path / "b",
        current="other",
        users=[
            {"name": "u", "user": {"token": "second"}},
            {"name": "v", "user": {"username": "me", "password": "pw"}},
        ],
        clusters=[{"name": "c2", "cluster": {"server": "http://two", "insecure-skip-tls-verify": True}}],
        contexts=[{"name": "other", "context": {"cluster": "c2", "user": "v"}}],
    )
    both = f"{first}{os.pathsep}{second}"
    assert connection.load(both).bearer_token() == "first"
    other = connection.load(both, context="other")
    assert (other.server, other.insecure, other.username, other.password) == ("http://two", True, "me", "pw")
    assert other.bearer_token() is None and connection.current_namespace(both, "other") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"current": None}, "no current-context"),
        ({"contexts": [{"name": "dev", "context": {"cluster": "gone", "user": "u"}}]}, "cluster 'gone'"),
        ({"clusters": [{"name": "c", "cluster": {}}]}, "has no server"),
    ],
)
def test_a_kubeconfig_that_cannot_be_used_says_why(tmp_path, kwargs, message):
    with pytest.raises(KubeconfigError, match=message):
        connection.load(str(write_kubeconfig(tmp_path / "config", **kwargs)))


def test_no_kubeconfig_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubeconfigError, match="no kubeconfig"):
        connection.load()
    with pytest.raises(KubeconfigError, match="no context 'x'"):
        connection.load(str(write_kubeconfig(tmp_path / "config")), context="x")


def test_an_exec_plugin_is_run_with_its_env_and_asked_again_once_its_token_expires(tmp_path):
    calls = tmp_path / "calls"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        textwrap.dedent(f"""
        import json, os, pathlib
        calls = pathlib.Path({str(calls)!r})
        n = len(calls.read_text()) if calls.exists() else 0
        calls.write_text("x" * (n + 1))
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {{
            "token": os.environ["TOKEN_PREFIX"] + str(n),
            # already within the early-renewal margin: the next call asks again
            "expirationTimestamp": "2000-01-01T00:00:00Z"}}}}))
        """)
    )
    users = [
        {
            "name": "u",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": sys.executable,
                    "args": ["plugin.py"],  # relative to the kubeconfig's folder, where it runs
                    "env": [{"name": "TOKEN_PREFIX", "value": "exec-"}],
                }
            },
        }
    ]
    c = connection.load(str(write_kubeconfig(tmp_path / "config", users=users)))
    assert c.bearer_token() == "exec-0"
    assert c.bearer_token() == "exec-1"


def test_a_failing_exec_plugin_is_a_config_error(tmp_path):
    users = [
        {"name": "u", "user": {"exec": {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]}}}
    ]
    c = connection.load(str(write_kubeconfig(tmp_path / "config", users=users)))
    with pytest.raises(KubeconfigError, match="exec plugin"):
        c.bearer_token()


def test_in_a_pod_the_service_account_token_is_read_again(tmp_path, monkeypatch):
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "namespace").write_text("tep-system")
    (tmp_path / "ca.crt").write_text("CA")
    monkeypatch.setattr(connection, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    c = connection.load()
    assert (c.server, c.ca_file, c.namespace) == (
        "https://[fd00::1]:443",
        str(tmp_path / "ca.crt"),
        "tep-system",
    )
    assert c.bearer_token() == "first"
    (tmp_path / "token").write_text("rotated")
    assert c.bearer_token() == "first"  # read at most once a minute
    monkeypatch.setattr(connection, "TOKEN_REREAD_SECONDS", 0)
    c = connection.load()
    assert c.bearer_token() == "rotated"
    (tmp_path / "token").write_text("rotated again")
    assert c.bearer_token() == "rotated again"
