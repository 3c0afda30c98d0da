"""One rewrite of each test module's asserts per run, shared by the run's pytest processes.

Every xdist worker collects the whole suite, so each one rewrites the asserts of every test module
(pytest's assertion rewriting: parse, rewrite, compile) before any test starts. pytest keeps a rewrite
as bytecode beside the test file, which a run cannot: a pod's tests are read-only (a ConfigMap, an
image) and the runner writes no bytecode. So N workers spend N times the CPU: 0.56 s per process for a
module of 600 asserts, 2.2 s of start-up for 8 workers on 2 cores (bench/README.md). Here the first
process to need a module's rewrite makes it and keeps it in the run's own folder, under a lock the
others wait on, and they read it from there.

The code is pytest's own rewrite, unchanged; what is shared is its result, checked against the source's
hash when read (pytest's own check). This reaches into pytest's private `_rewrite_test`, `_read_pyc` and
`_write_pyc` of the version requirements.lock pins (tests/runner/test_rewrite.py runs them).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import types
from pathlib import Path

import pytest
from _pytest.assertion import rewrite


def share_rewrites(folder: Path) -> None:
    """From now on, this process takes each module's rewrite from `folder` or leaves it there (idempotent)."""
    own = rewrite._rewrite_test
    if getattr(own, "tep_folder", None) == folder:
        return
    folder.mkdir(parents=True, exist_ok=True)

    def shared(fn: Path, config: pytest.Config) -> tuple[bytes, types.CodeType]:
        name = hashlib.sha256(str(fn).encode()).hexdigest()[:32]
        pyc = folder / f"{name}.pyc"
        with open(folder / f"{name}.lock", "ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed, or when the process dies
            code = rewrite._read_pyc(fn, pyc)
            if code is not None:
                return importlib.util.source_hash(fn.read_bytes()), code
            source_hash, code = own(fn, config)
            rewrite._write_pyc(config.stash[rewrite.assertstate_key], code, source_hash, pyc)
            return source_hash, code

    shared.tep_folder = folder  # type: ignore[attr-defined]
    rewrite._rewrite_test = shared
