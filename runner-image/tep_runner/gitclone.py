"""The git init container's settings and commands (`tep-runner git-clone`); credentials stay in files."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tep_runner.settings import SettingsError

CREDENTIALS_DIR = Path("/etc/tep/git")  # the Secret named in source.git.secretName


@dataclass(frozen=True)
class GitSettings:
    url: str
    ref: str  # branch, tag or commit; "" = the remote's default branch
    dest: Path


def git_settings_from_env(environ: Mapping[str, str]) -> GitSettings:
    url = environ.get("TEP_GIT_URL", "")
    if not url:
        raise SettingsError("TEP_GIT_URL: missing")
    if urlsplit(url).password:
        raise SettingsError("TEP_GIT_URL: must not hold a password; put it in the git Secret instead")
    dest = environ.get("TEP_GIT_DEST", "")
    if not dest:
        raise SettingsError("TEP_GIT_DEST: missing")
    ref = environ.get("TEP_GIT_REF", "")
    if ref.startswith("-"):
        raise SettingsError(f"TEP_GIT_REF: {ref!r} is not a ref")
    return GitSettings(url=url, ref=ref, dest=Path(dest))


def clone_commands(settings: GitSettings) -> list[list[str]]:
    """A shallow fetch of one ref; unlike `clone --branch` this also accepts a commit id."""
    dest = str(settings.dest)
    return [
        ["git", "init", "-q", dest],
        ["git", "-C", dest, "remote", "add", "origin", settings.url],
        ["git", "-C", dest, "fetch", "--depth", "1", "origin", settings.ref or "HEAD"],
        ["git", "-C", dest, "checkout", "-q", "--detach", "FETCH_HEAD"],
    ]


def credential_env(
    creds: Path, present: frozenset[str], private_key: Path | None, known_hosts: Path
) -> dict[str, str]:
    """Environment for git: never a secret's value, only the paths of the files holding it.

    username/password: a credential helper (configured through GIT_CONFIG_* so it applies to every git
    command) that cats the files when git asks. ssh-privatekey: ssh with that key (`private_key`, a copy
    with the 0600 mode ssh insists on) and known hosts from the Secret's `known_hosts` when present.
    """
    env = {"GIT_TERMINAL_PROMPT": "0"}  # fail instead of waiting for a password nobody will type
    if {"username", "password"} <= present:
        username, password = (shlex.quote(str(creds / name)) for name in ("username", "password"))
        helper = (
            '!f() { test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" '
            f'"$(cat {username})" "$(cat {password})"; }}; f'
        )
        # The empty helper first drops any helper configured elsewhere.
        env |= {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": ""}
        env |= {"GIT_CONFIG_KEY_1": "credential.helper", "GIT_CONFIG_VALUE_1": helper}
    if private_key is not None:
        checking = "yes" if "known_hosts" in present else "accept-new"
        options = [
            "IdentitiesOnly=yes",
            f"StrictHostKeyChecking={checking}",
            f"UserKnownHostsFile={known_hosts}",
        ]
        env["GIT_SSH_COMMAND"] = shlex.join(["ssh", "-i", str(private_key), *(f"-o{o}" for o in options)])
    return env
