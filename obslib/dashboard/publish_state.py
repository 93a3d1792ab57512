"""The publish job's local state ``ops/dashboard_publish_state.json``, one slot per
destination, light to import: the weekly payload reads it for its ``attachments`` without
loading fsspec. Written only by ``publish.run_publish``.

Layout: ``{"destinations": {<destination key>: {queue[{job_id, sequence, queued_at,
attempts, last_error}], consecutive_failures, last_published{job_id, sequence, uri,
published_at}, last_failure}}}``. The key is ``destination_key``: a URL without any
``user:password@`` part, or a local folder as an absolute path (a relative one is resolved
against the work root). A new destination therefore starts empty and gets the current
bundle, and the weekly payload's attachment points at the configured destination's copy.
The older single-slot layout (``{queue, consecutive_failures, last_published, ...}`` at the
top) is read as the slot of the destination its ``last_published.uri`` names.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..storage import read_json_object

STATE = "dashboard_publish_state.json"


def is_url(to: str) -> bool:
    """``to`` names an fsspec protocol (``scheme://...``), not a local folder."""
    return "://" in to


def public_uri(to: str) -> str:
    """``to`` without any ``user:password@`` part (the URI goes into the weekly payload)."""
    parts = urlsplit(to)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts) if parts.scheme else to


def local_destination(to: str, work_root: Path) -> str:
    """A local destination as an absolute, normalised path: a relative one is resolved
    against the work root (never the current folder, which differs under cron)."""
    return os.path.normpath(os.path.join(os.path.abspath(work_root), to))


def destination_key(to: str, work_root: Path) -> str:
    """The state slot of destination ``to`` (see module doc)."""
    return public_uri(to).rstrip("/") if is_url(to) else local_destination(to, work_root)


def _slot(raw: object) -> dict:
    st = raw if isinstance(raw, dict) else {}
    queue = st.get("queue") if isinstance(st.get("queue"), list) else []
    fails = st.get("consecutive_failures")
    return {"queue": [q for q in queue if isinstance(q, dict) and isinstance(q.get("job_id"), str)],
            "consecutive_failures": fails if isinstance(fails, int) and not isinstance(fails, bool) else 0,
            "last_published": st.get("last_published") if isinstance(st.get("last_published"), dict) else None,
            "last_failure": st.get("last_failure")}


def read_state(ops: Path) -> dict:
    """``{"destinations": {key: {queue, consecutive_failures, last_published,
    last_failure}}}`` (empty for a missing or damaged file; see module doc)."""
    st = read_json_object(ops / STATE) or {}
    dests = st.get("destinations") if isinstance(st.get("destinations"), dict) else {}
    out = {"destinations": {k: _slot(v) for k, v in dests.items() if isinstance(k, str)}}
    if not dests and isinstance(st.get("last_published"), dict):  # the older single-slot layout
        old = _slot(st)
        uri, job = old["last_published"].get("uri"), old["last_published"].get("job_id")  # type: ignore[union-attr]
        if isinstance(uri, str) and isinstance(job, str) and uri.rstrip("/").endswith(f"/{job}"):
            out["destinations"][uri.rstrip("/")[: -len(job) - 1]] = old
    return out


def slot(state: dict, key: str) -> dict:
    """Destination ``key``'s slot in ``state`` (created empty when new)."""
    return state["destinations"].setdefault(key, _slot({}))


def published_attachments(cfg) -> list[dict]:
    """The weekly payload's ``attachments`` entry for the snapshot last published to the
    configured destination (``[]`` when publishing is not configured or nothing was
    published there yet)."""
    to = getattr(getattr(cfg, "publish", None), "to", "")
    if not to:
        return []
    last = read_state(Path(cfg.ops_dir))["destinations"].get(destination_key(to, Path(cfg.work_root)), {})
    last = last.get("last_published") if last else None
    if not last or not isinstance(last.get("uri"), str):
        return []
    return [{"name": "dashboard_bundle", "path": "dashboard/manifest.json", "uri": f"{last['uri']}manifest.json",
             "media_type": "application/json", "job_id": last.get("job_id")}]
