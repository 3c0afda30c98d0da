"""Which file of the reports volume a URL names, if any: only regular files inside the root."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

# Percent-encoded '/', '\' and '.': a client that encodes them is trying to get around the checks below.
_ENCODED = re.compile(r"%(2f|5c|2e|00)", re.IGNORECASE)
# Content types by suffix; anything else is sent as a download. Logs and XML are text, never rendered.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".log": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
}
DOWNLOAD = "application/octet-stream"
# A document served under `sandbox allow-scripts` has an opaque origin, where reading sessionStorage or
# localStorage throws; pytest-html's report keeps its sort order there and would render an empty table.
# This stand-in, put first in each HTML file served, gives such a document in-memory storage instead.
STORAGE_SHIM = (
    b"<script>(function(){function m(){var d={};return{getItem:function(k){return k in d?d[k]:null},"
    b"setItem:function(k,v){d[k]=String(v)},removeItem:function(k){delete d[k]},clear:function(){d={}},"
    b"key:function(i){return Object.keys(d)[i]||null},get length(){return Object.keys(d).length}}}"
    b'["sessionStorage","localStorage"].forEach(function(n){try{window[n]}catch(e){'
    b"Object.defineProperty(window,n,{value:m(),configurable:true})}})})();</script>"
)
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)


def encoded_escape(raw_path: str) -> bool:
    """Whether the request's raw path holds an encoded separator or dot (refused before decoding)."""
    return bool(_ENCODED.search(raw_path))


def resolve(root: Path, relative: str) -> Path | None:
    """The real path of `relative` under `root` when it is a regular file inside `root`, else None.

    `root` must be a real path (os.path.realpath). Links are followed (the plan's `latest` link) and the
    target must still be inside the root: a link planted to point elsewhere resolves outside and is refused.
    """
    if not relative or "\\" in relative or "\0" in relative or relative.startswith("/"):
        return None
    parts = PurePosixPath(relative).parts
    if any(part in ("..", ".") for part in relative.split("/")) or not parts:
        return None
    real = Path(os.path.realpath(root.joinpath(*parts)))
    if real != root and root not in real.parents:
        return None
    return real if real.is_file() else None


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), DOWNLOAD)


def with_storage_shim(html: bytes) -> bytes:
    """`html` with STORAGE_SHIM first in its <head> (or first of all when it has none)."""
    head = _HEAD.search(html)
    at = head.end() if head else 0
    return html[:at] + STORAGE_SHIM + html[at:]
