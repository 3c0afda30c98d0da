"""requirements.lock (made by `make lock`), read for the tests of the images and of `make demo`."""

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.chart.chart_tools import REPO

LOCK = REPO / "requirements.lock"


def lock_requirements() -> dict[str, Requirement]:
    """Each locked distribution by canonical name; every entry is an exact `==` pin."""
    out = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier  # one exact version each
            assert spec.operator == "==", f"{LOCK.name}: {line} is not an exact pin"
            out[canonicalize_name(req.name)] = req
    return out


def pinned_version(req: Requirement) -> str:
    return next(iter(req.specifier)).version
