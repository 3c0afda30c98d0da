"""A container of a rendered runner pod, run on this machine as a kubelet would run it, in bubblewrap.

What the pod spec says is what the sandbox enforces, and anything of the spec it cannot model fails
the test instead of being ignored:

- the image: runner-image/Dockerfile's final stage (tests/dockerfile.py) for ENV, WORKDIR, ENTRYPOINT
  and CMD; its filesystem is this machine's /usr and /etc, read-only (readOnlyRootFilesystem), with the
  project's .venv-run standing in for the image's Python (first on PATH);
- the command: the container's command/args over the image's ENTRYPOINT/CMD, by Kubernetes' rules, run
  as pid 1 of its own pid namespace (which ignores a signal it has no handler for), and `terminate()`
  sends it SIGTERM as the kubelet does at activeDeadlineSeconds;
- the env: the image's, the kubelet's (HOSTNAME, the API server's service variables), then the
  container's in order, `valueFrom.fieldRef` of the pod's labels resolved;
- the volumes at their mountPaths with their readOnly flags: emptyDirs as empty world-writable folders
  (0777, as the kubelet makes them), a claim's folder made group-writable for fsGroup, a configMap laid
  out as the kubelet's atomic writer does (`..data`, a timestamped folder, links) with its defaultMode;
  the termination message file bound at terminationMessagePath; no service-account token;
- the user: runAsUser/runAsGroup/fsGroup. As root, bwrap sets up the mounts (it may reach a checkout
  in a folder only root may enter) and setpriv then drops to that uid for real, with no capabilities;
  as another user, bwrap maps that user to the uid in a user namespace. Either way no_new_privs is set
  (allowPrivilegeEscalation: false) and the capability bounding set is empty (drop: [ALL]).

strace records every file system call that failed; `Result.denied_writes` are the attempts to write
where the pod may not (a read-only mount, the image's filesystem): each is a bug even when the suite
still passes, because it means a cache, a bytecode file or a HOME file silently not written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dockerfile import ImageConfig

REPO = Path(__file__).resolve().parents[2]
RUN_VENV = REPO / ".venv-run"
# What the kubelet adds to every container (enableServiceLinks: false leaves out the other services'
# variables, never the API server's).
KUBELET_ENV = {
    "KUBERNETES_SERVICE_HOST": "10.96.0.1",
    "KUBERNETES_SERVICE_PORT": "443",
    "KUBERNETES_SERVICE_PORT_HTTPS": "443",
    "KUBERNETES_PORT": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
    "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
    "KUBERNETES_PORT_443_TCP_PORT": "443",
    "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
}
# A configMap volume's files are in a timestamped folder, `..data` links to it, each key links into it.
CONFIGMAP_FOLDER = "..2026_12_02_00_00_00.000000001"
# Failed system calls that mean "tried to write" (strace -e trace=%file): an open for writing, or a call
# that changes the file system.
_WRITING_CALLS = frozenset({
    "creat", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link",
    "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat",
    "truncate", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat", "setxattr", "lsetxattr",
    "removexattr", "lremovexattr",
})  # fmt: skip
_OPEN_CALLS = frozenset({"open", "openat", "openat2"})
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC")
_DENIED = frozenset({"EROFS", "EACCES", "EPERM"})
_TRACE_LINE = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+-1\s+(E[A-Z]+)")
# bwrap's own set-up (before it runs the command) works on the new root under these names.
_SETUP_PATHS = ("/newroot", "/oldroot")


@dataclass
class Result:
    code: int
    output: str
    denied_writes: list[str]


@dataclass
class Running:
    process: subprocess.Popen[str]
    trace: Path

    def terminate(self) -> None:
        """SIGTERM to the container's first process, as the kubelet sends it (a deadline, a deletion)."""
        os.kill(_first_process(self.process.pid), signal.SIGTERM)

    def wait(self, timeout: float) -> Result:
        try:
            output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # bwrap's --die-with-parent takes the container with it
            output, _ = self.process.communicate()
            raise AssertionError(f"the container did not end within {timeout} s:\n{output}") from None
        return Result(self.process.returncode, output, denied_writes(self.trace.read_text()))


def _first_process(ancestor: int) -> int:
    """The host pid of the process that is pid 1 in its own pid namespace, below `ancestor`."""
    for _ in range(100):
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(
                    line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
                )
            except OSError:
                continue
            pids = fields.get("NSpid", "").split()
            if len(pids) > 1 and pids[-1] == "1" and _descends(int(pids[0]), ancestor):
                return int(pids[0])
        time.sleep(0.05)
    raise AssertionError(f"no container process below pid {ancestor}")


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def unavailable() -> str | None:
    """Why the sandbox cannot run here, or None."""
    for tool, package in (("bwrap", "bubblewrap"), ("strace", "strace"), ("setpriv", "util-linux")):
        if not shutil.which(tool):
            return f"{tool} is not installed (apt-get install {package})"
    if not (RUN_VENV / "bin" / "tep-runner").exists():
        return f"{RUN_VENV.relative_to(REPO)} is missing (make run-venv)"
    # What every run does, under strace (ptrace may be forbidden where user namespaces are not).
    probe = subprocess.run(
        ["strace", "-f", "-qq", "-o", os.devnull, *_bwrap_user(65532, 65532), *_system_mounts(), "--",
         *_drop_to(65532, 65532, []), "true"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"bubblewrap (under strace) cannot make a sandbox here: {probe.stderr.strip()}"
    return None


def require() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def _bwrap_user(uid: int, gid: int) -> list[str]:
    if os.geteuid() == 0:
        # Privileged bwrap keeps only these two capabilities for setpriv, which drops them with the uid.
        return ["bwrap", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return ["bwrap", "--unshare-user", "--uid", str(uid), "--gid", str(gid)]


def _drop_to(uid: int, gid: int, groups: list[int]) -> list[str]:
    if os.geteuid() != 0:
        return []
    supplementary = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return [
        "setpriv", f"--reuid={uid}", f"--regid={gid}", *supplementary,
        "--inh-caps=-all", "--bounding-set=-all", "--",
    ]  # fmt: skip


def _system_mounts() -> list[str]:
    """The image's filesystem: this machine's system folders, read-only (a merged /usr keeps its links)."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # The kernel's views a container has: its own /proc, a minimal /dev, /sys read-only.
    return [*args, "--proc", "/proc", "--dev", "/dev", "--ro-bind", "/sys", "/sys"]


def _base_python() -> Path:
    """The installation .venv-run's interpreter belongs to."""
    python = RUN_VENV / "bin" / "python"
    code = "import sys; print(sys.base_prefix)"
    return Path(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    )


def _folders_above(path: Path) -> list[str]:
    # bwrap would make them 0700 (root's), which the pod's uid could not enter.
    above = reversed(path.parents[:-1])
    return [arg for parent in above for arg in ("--perms", "0755", "--dir", str(parent))]


def container_command(container: dict[str, Any], image: ImageConfig) -> list[str]:
    """Kubernetes' rule: `command` replaces the ENTRYPOINT (and drops the CMD); `args` replaces the CMD."""
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*image.entrypoint, *container.get("args", image.cmd)]


def field_ref(path: str, pod_name: str, metadata: dict[str, dict[str, str]]) -> str:
    if path == "metadata.name":
        return pod_name
    found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    assert found, f"the sandbox does not model fieldRef {path}"
    # A label that is missing gives an empty value, as on a cluster.
    return metadata[found.group(1)].get(found.group(2), "")


def container_env(
    container: dict[str, Any], image: ImageConfig, pod_name: str, metadata: dict[str, dict[str, str]]
) -> dict[str, str]:
    """`metadata`: the pod's labels and annotations, for fieldRefs."""
    env = {**image.env, "HOSTNAME": pod_name, **KUBELET_ENV}
    assert "envFrom" not in container, "the sandbox does not model envFrom"
    for var in container.get("env", []):
        if "value" in var:
            assert "$(" not in var["value"], f"the sandbox does not expand $(VAR) references: {var}"
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["fieldRef"]["fieldPath"]
            env[var["name"]] = field_ref(ref, pod_name, metadata)
    return env


class Pod:
    """One rendered pod: its volumes live in `folder`; its containers run one after the other."""

    def __init__(
        self,
        spec: dict[str, Any],
        *,
        name: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        folder: Path,
        image: ImageConfig,
        claims: dict[str, Path],
        config_maps: dict[str, Path],
    ) -> None:
        self.spec, self.name, self.folder, self.image = spec, name, folder, image
        self.metadata = {"labels": labels, "annotations": annotations}
        security = spec.get("securityContext") or {}
        self.uid, self.gid = security["runAsUser"], security.get("runAsGroup", 0)
        self.groups = [security["fsGroup"]] if "fsGroup" in security else []
        assert security.get("runAsNonRoot") and self.uid != 0
        # No token: the sandbox mounts only the spec's volumes, which is right only without one.
        assert spec.get("automountServiceAccountToken") is False
        self.volumes = {v["name"]: self._volume(v, claims, config_maps) for v in spec["volumes"]}

    def _volume(self, volume: dict[str, Any], claims: dict[str, Path], config_maps: dict[str, Path]) -> Path:
        path = self.folder / "volumes" / volume["name"]
        if "emptyDir" in volume:
            path.mkdir(parents=True)
            path.chmod(0o777)
        elif "persistentVolumeClaim" in volume:
            path = claims[volume["persistentVolumeClaim"]["claimName"]]
            path.mkdir(parents=True, exist_ok=True)
            if self.groups and os.geteuid() == 0:  # fsGroup: the volume's group, writable, inherited
                os.chown(path, -1, self.groups[0])
                path.chmod(0o2775)
        elif "configMap" in volume:
            source = config_maps[volume["configMap"]["name"]]
            data = path / CONFIGMAP_FOLDER
            data.mkdir(parents=True)
            mode = volume["configMap"].get("defaultMode", 0o644)
            for file in sorted(source.iterdir()):
                if file.is_file():  # a configMap made with --from-file=DIR/ holds its files only
                    shutil.copyfile(file, data / file.name)
                    (data / file.name).chmod(mode)
                    (path / file.name).symlink_to(f"..data/{file.name}")
            (path / "..data").symlink_to(CONFIGMAP_FOLDER)
            for folder in (path, data):
                folder.chmod(0o755)
        else:
            raise AssertionError(f"the sandbox does not model the volume {volume}")
        return path

    def run(self, container: dict[str, Any], *, network: bool = False, timeout: float = 300) -> Result:
        """Run one container to its end; `network`: share this machine's network (a git server on it)."""
        return self.start(container, network=network).wait(timeout)

    def start(self, container: dict[str, Any], *, network: bool = False) -> Running:
        """Start one container; its command is the first process (pid 1) of its pid namespace, as in a pod."""
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, "the sandbox models a read-only root only"
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert not security["capabilities"].get("add")
        name = container["name"]
        env = container_env(container, self.image, self.name, self.metadata)
        env["PATH"] = f"{RUN_VENV / 'bin'}:{env['PATH']}"  # .venv-run stands in for the image's Python
        mounts = []
        for mount in container.get("volumeMounts", []):
            mounts += ["--ro-bind" if mount.get("readOnly") else "--bind"]
            mounts += [str(self.volumes[mount["name"]]), mount["mountPath"]]
        # After the volumes, so that a checkout under /tmp (a CI clone) is not hidden by the /tmp emptyDir.
        for path in (RUN_VENV, _base_python()):  # its interpreter may be outside /usr (pyenv)
            if not path.is_relative_to("/usr"):
                mounts += [*_folders_above(path), "--ro-bind", str(path), str(path)]
        # The kubelet's file for the termination message, writable by any uid, bound into the container.
        message = self.folder / f"termination-{name}"
        message.touch()
        message.chmod(0o666)
        mounts += ["--bind", str(message), container.get("terminationMessagePath", "/dev/termination-log")]
        trace = self.folder / f"strace-{name}"
        command = [
            "strace", "-f", "-qq", "-o", str(trace), "-e", "trace=%file", "-e", "status=failed",
            *_bwrap_user(self.uid, self.gid),
            "--die-with-parent", "--new-session", "--unshare-pid", "--as-pid-1", "--unshare-ipc",
            "--unshare-uts", "--hostname", self.name, *([] if network else ["--unshare-net"]),
            *_system_mounts(), *mounts, "--remount-ro", "/",
            "--chdir", container.get("workingDir", self.image.workdir), "--clearenv",
            *(arg for key, value in env.items() for arg in ("--setenv", key, value)),
            "--", *_drop_to(self.uid, self.gid, self.groups), *container_command(container, self.image),
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
        )
        return Running(process, trace)

    def message(self, container: dict[str, Any]) -> str:
        return (self.folder / f"termination-{container['name']}").read_text()


def denied_writes(trace: str) -> list[str]:
    """The failed attempts to write of an strace log (`-e trace=%file -e status=failed`)."""
    found = []
    for line in trace.splitlines():
        match = _TRACE_LINE.match(line)
        if not match:
            continue
        call, args, errno = match.groups()
        writing = call in _WRITING_CALLS or (call in _OPEN_CALLS and _WRITE_FLAGS.search(args))
        paths = re.findall(r'"([^"]*)"', args)
        if writing and errno in _DENIED and not any(p.startswith(_SETUP_PATHS) for p in paths):
            found.append(f"{call}({', '.join(paths)}) = {errno}")
    return found
