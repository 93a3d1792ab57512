"""The active-alerts state file ``ops/active_alerts.json``: one entry per alert id.

Shape (``schemas/active_alerts.schema.json``)::

    {"schema_version": "1", "updated_at",
     "alerts": {<id>: {id, severity, message, source, next_action, first_seen, last_seen,
                       acknowledged_by, acknowledged_at, ack_note, resolved_at,
                       channels: {<channel>: {status: pending|sent|failed, event: trigger|repeat|
                                  resolve|acknowledge, severity, last_sent_at, attempts, last_error}}}},
     "acks": [{id, severity, first_seen, acknowledged_at, time_to_ack_s, by}],   # newest last, capped
     "resolved": [{id, severity, first_seen, resolved_at, acknowledged_at}]}      # newest last, capped

The file is the outbox too: a channel whose ``status`` is ``pending`` (or ``failed``) still
has to receive ``event``; only the latest state per alert id is kept, so a later run sends
the newest severity, never a stale one. Read-modify-write happens under
``ops/active_alerts.lock`` (bounded wait); every write is atomic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ..storage import atomic_write_json, file_lock, read_json_object
from ..timeutil import parse_ts, to_rfc3339

STATE_NAME = "active_alerts.json"
LOCK_NAME = "active_alerts.lock"
SCHEMA_VERSION = "1"
MAX_HISTORY = 500
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}


def state_path(ops_dir: str | os.PathLike) -> Path:
    """``<ops_dir>/active_alerts.json``."""
    return Path(ops_dir) / STATE_NAME


def empty_state() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "updated_at": None, "alerts": {}, "acks": [], "resolved": []}


def read_state(ops_dir: str | os.PathLike) -> dict[str, Any]:
    """The state (an empty one when the file is missing or unreadable); no lock needed."""
    doc = read_json_object(state_path(ops_dir)) or {}
    out = empty_state()
    if isinstance(doc.get("updated_at"), str):
        out["updated_at"] = doc["updated_at"]
    for k in ("alerts", "acks", "resolved"):
        if isinstance(doc.get(k), type(out[k])):
            out[k] = doc[k]
    return out


@contextmanager
def locked_state(ops_dir: str | os.PathLike, now: datetime, timeout_s: float = 30.0) -> Iterator[dict[str, Any]]:
    """Read the state under its lock, yield it for changes, write it back atomically
    (``updated_at = now``). Raises ``LockTimeout`` after ``timeout_s``."""
    ops = Path(ops_dir)
    ops.mkdir(parents=True, exist_ok=True)
    with file_lock(ops / LOCK_NAME, timeout_s):
        st = read_state(ops)
        yield st
        st["updated_at"] = to_rfc3339(now)
        st["acks"] = st["acks"][-MAX_HISTORY:]
        st["resolved"] = st["resolved"][-MAX_HISTORY:]
        atomic_write_json(state_path(ops), st)


def age_s(entry: dict[str, Any], now: datetime) -> float | None:
    """Seconds since the alert was first seen (None when unparseable)."""
    try:
        return (now - parse_ts(entry["first_seen"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def ack_stats(st: dict[str, Any], *, since: datetime | None, goal_s: float) -> dict[str, Any]:
    """Time to acknowledge: ``{goal_s, count, median_s, max_s, over_goal, unacknowledged_critical}`` over
    the acknowledgements made since ``since`` (all when None), plus the open criticals not
    acknowledged yet."""
    times = []
    for a in st.get("acks", []):
        try:
            if since is None or parse_ts(a["acknowledged_at"]) > since:
                times.append(float(a["time_to_ack_s"]))
        except (KeyError, TypeError, ValueError):
            continue
    times.sort()
    med = None
    if times:
        mid = len(times) // 2
        med = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    open_crit = sorted(k for k, e in st.get("alerts", {}).items()
                       if e.get("severity") == "critical" and not e.get("acknowledged_at") and not e.get("resolved_at"))
    return {"goal_s": goal_s, "count": len(times), "median_s": med, "max_s": times[-1] if times else None,
            "over_goal": sum(1 for t in times if t > goal_s), "unacknowledged_critical": open_crit}
