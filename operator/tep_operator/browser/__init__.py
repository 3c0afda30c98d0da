"""The report browser (`tep serve`): web pages and a JSON API over a reports volume.

It reads only the volume (run folders and each plan's history, tep_runner.history) and imports neither
kopf nor the Kubernetes client: in the cluster it runs with no API token and a read-only mount.
"""

from pathlib import Path

# `tep serve`'s defaults, here so that the CLI's parser imports no web libraries.
DEFAULT_REPORTS = Path("tep-reports")  # the folder `tep run --local` writes by default
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


FILES_ROUTE = "/files/"  # a file of the volume, by its path below the root


def file_url(relative: str) -> str:
    """The browser's URL path of a file on the volume (`reportPath` in a status, say)."""
    return FILES_ROUTE + relative.lstrip("/")
