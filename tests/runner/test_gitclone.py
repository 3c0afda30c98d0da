import os
import subprocess
from pathlib import Path

import pytest

from tep_runner.gitclone import clone_commands, credential_env, git_settings_from_env
from tep_runner.settings import SettingsError
from tep_runner.shell import git_clone

GIT_ID = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
}


def git(*args, cwd=None):
    return subprocess.run(
        ["git", *args], cwd=cwd, env=os.environ | GIT_ID, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def origin(tmp_path):
    repo = tmp_path / "origin"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "tests").mkdir()
    (repo / "tests" / "test_one.py").write_text("def test_one():\n    pass\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    first = git("rev-parse", "HEAD", cwd=repo).strip()
    (repo / "tests" / "test_two.py").write_text("def test_two():\n    pass\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "second", cwd=repo)
    return repo, first


@pytest.mark.parametrize("ref", ["main", "", "first"])
def test_clone_a_branch_the_default_or_a_commit(origin, tmp_path, ref):
    repo, first = origin
    dest = tmp_path / "workspace" / "src"
    env = {
        "TEP_GIT_URL": f"file://{repo}",
        "TEP_GIT_REF": first if ref == "first" else ref,
        "TEP_GIT_DEST": str(dest),
    }
    assert git_clone(env, credentials=tmp_path / "no-secret") == 0
    assert (dest / "tests" / "test_one.py").exists()
    assert (dest / "tests" / "test_two.py").exists() == (ref != "first")


def test_clone_failure_exits_2(tmp_path):
    env = {"TEP_GIT_URL": f"file://{tmp_path}/missing", "TEP_GIT_DEST": str(tmp_path / "src")}
    assert git_clone(env, credentials=tmp_path) == 2


def test_password_in_url_is_refused():
    with pytest.raises(SettingsError, match=r"^TEP_GIT_URL:"):
        git_settings_from_env({"TEP_GIT_URL": "https://bot:s3cret@git.example/r.git", "TEP_GIT_DEST": "/w"})


def test_commands_never_use_a_shell_or_a_credential():
    settings = git_settings_from_env(
        {"TEP_GIT_URL": "https://git.example/r.git", "TEP_GIT_REF": "v1", "TEP_GIT_DEST": "/w/src"}
    )
    assert clone_commands(settings)[2] == ["git", "-C", "/w/src", "fetch", "--depth", "1", "origin", "v1"]


def test_credential_helper_reads_the_secret_files(tmp_path):
    secret = tmp_path / "git secret"
    secret.mkdir()
    (secret / "username").write_text("qa-bot\n")
    (secret / "password").write_text("p@ss w0rd$(id)")
    env = credential_env(secret, frozenset({"username", "password"}), None, tmp_path / "known_hosts")
    assert not any("w0rd" in value for value in env.values())  # only paths travel, never the secret
    filled = subprocess.run(
        ["git", "credential", "fill"], input="protocol=https\nhost=git.example\n\n",
        env=os.environ | env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "username=qa-bot\n" in filled and "password=p@ss w0rd$(id)\n" in filled


def test_ssh_key(tmp_path):
    env = credential_env(
        Path("/etc/tep/git"),
        frozenset({"ssh-privatekey", "known_hosts"}),
        tmp_path / "id",
        Path("/etc/tep/git/known_hosts"),
    )
    assert env["GIT_SSH_COMMAND"].startswith(
        f"ssh -i {tmp_path / 'id'} -oIdentitiesOnly=yes -oStrictHostKeyChecking=yes"
    )
    assert "GIT_CONFIG_COUNT" not in env
