"""The publish job's local state ``ops/dashboard_publish_state.json`` (queue, failures in a
row, last published snapshot), light to import: the weekly payload reads it for its
``attachments`` without loading fsspec. Written only by ``publish.run_publish``."""

from __future__ import annotations

from pathlib import Path

from ..storage import read_json_object

STATE = "dashboard_publish_state.json"


def read_state(ops: Path) -> dict:
    """``{queue[...], consecutive_failures, last_published, last_failure}`` (defaults for a
    missing or damaged file)."""
    st = read_json_object(ops / STATE) or {}
    queue = st.get("queue") if isinstance(st.get("queue"), list) else []
    fails = st.get("consecutive_failures")
    return {"queue": [q for q in queue if isinstance(q, dict) and isinstance(q.get("job_id"), str)],
            "consecutive_failures": fails if isinstance(fails, int) and not isinstance(fails, bool) else 0,
            "last_published": st.get("last_published") if isinstance(st.get("last_published"), dict) else None,
            "last_failure": st.get("last_failure")}


def published_attachments(cfg) -> list[dict]:
    """The weekly payload's ``attachments`` entry for the last published dashboard
    snapshot (``[]`` when publishing is not configured or nothing was published yet)."""
    if not getattr(getattr(cfg, "publish", None), "to", ""):
        return []
    last = read_state(Path(cfg.ops_dir))["last_published"]
    if not last or not isinstance(last.get("uri"), str):
        return []
    return [{"name": "dashboard_bundle", "path": "dashboard/manifest.json", "uri": f"{last['uri']}manifest.json",
             "media_type": "application/json", "job_id": last.get("job_id")}]
