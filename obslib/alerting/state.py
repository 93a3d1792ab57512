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
``ops/active_alerts.lock`` (bounded wait); every write is atomic. A file that is not a
state (not JSON, ``[]``, ``{"alerts": 5}``) is never treated as empty: readers raise
``StateUnreadable`` (exit 2, naming the file); a writer moves it aside to
``active_alerts.json.corrupt-<stamp>`` and raises the warning ``alert-state-quarantined``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..storage import atomic_write_json, file_lock
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


class StateUnreadable(InputError):
    """``ops/active_alerts.json`` exists but is not a state file (exit 2): never treated as empty."""


def _entry_problem(entry: Any) -> str | None:
    """Why an ``alerts`` entry cannot be used (None when it can)."""
    if not isinstance(entry, dict):
        return f"not an object ({type(entry).__name__})"
    if not isinstance(entry.get("channels"), dict) or \
            not all(isinstance(v, dict) for v in entry["channels"].values()):
        return "'channels' is not an object of objects"
    if entry.get("severity") not in SEVERITY_RANK:
        return f"'severity' is {entry.get('severity')!r}"
    for k in ("first_seen", "last_seen"):
        if not isinstance(entry.get(k), str):
            return f"{k!r} is not a timestamp string"
    return None


def read_state(ops_dir: str | os.PathLike) -> dict[str, Any]:
    """The state (an empty one when the file is missing); no lock needed.

    Raises ``StateUnreadable`` (names the file) when it exists but is not JSON, not an
    object, or its ``alerts``/``acks``/``resolved`` have the wrong type. A malformed
    entry under ``alerts`` (``"channels": null``, ...) is left out of ``alerts`` and
    reported in ``malformed`` (``{id: why}``); ``locked_state`` writes it back unchanged."""
    path = state_path(ops_dir)
    out = empty_state()
    out["malformed"], out["_malformed_raw"] = {}, {}
    if not path.exists():
        return out
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateUnreadable(str(path), f"not readable JSON ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise StateUnreadable(str(path), f"not a JSON object (a {type(doc).__name__})")
    for k in ("alerts", "acks", "resolved"):
        if k in doc and not isinstance(doc[k], type(out[k])):
            raise StateUnreadable(str(path), f"{k!r} is a {type(doc[k]).__name__}, not a {type(out[k]).__name__}")
    if isinstance(doc.get("updated_at"), str):
        out["updated_at"] = doc["updated_at"]
    for k in ("acks", "resolved"):
        out[k] = doc.get(k, [])
    for aid, e in (doc.get("alerts") or {}).items():
        why = _entry_problem(e)
        if why is None:
            out["alerts"][aid] = e
        else:
            out["malformed"][aid] = why
            out["_malformed_raw"][aid] = e
    return out


def _quarantine(path: Path, now: datetime, why: str) -> dict[str, Any]:
    """Move an unreadable state file aside (``active_alerts.json.corrupt-<stamp>``) and start
    an empty state holding one warning that names it."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while dest.exists():
        dest, n = path.with_name(f"{path.name}.corrupt-{stamp}-{n}"), n + 1
    os.replace(path, dest)
    t = to_rfc3339(now)
    msg = (f"{path.name} was unreadable ({why}); moved aside to {dest.name} (its acks and history are not in the "
           "new state: restore them by hand)")
    print(f"alerts: warning: {msg}", file=sys.stderr)
    st = empty_state()
    st["malformed"], st["_malformed_raw"] = {}, {}
    st["alerts"]["alert-state-quarantined"] = {
        "id": "alert-state-quarantined", "severity": "warning", "message": msg, "next_action": "docs/runbook.md#acknowledge",
        "source": "alerting", "kind": "state_quarantined", "origin": "alerting", "first_seen": t, "last_seen": t,
        "acknowledged_by": None, "acknowledged_at": None, "ack_note": None, "resolved_at": None, "route": ["slack"],
        "channels": {}, "details": {"quarantined_file": dest.name}}
    return st


@contextmanager
def locked_state(ops_dir: str | os.PathLike, now: datetime, timeout_s: float = 30.0) -> Iterator[dict[str, Any]]:
    """Read the state under its lock, yield it for changes, write it back atomically
    (``updated_at = now``). Raises ``LockTimeout`` after ``timeout_s``."""
    ops = Path(ops_dir)
    ops.mkdir(parents=True, exist_ok=True)
    with file_lock(ops / LOCK_NAME, timeout_s):
        try:
            st = read_state(ops)
        except StateUnreadable as exc:  # never overwritten: moved aside, and said
            st = _quarantine(state_path(ops), now, exc.reason if hasattr(exc, "reason") else str(exc))
        yield st
        for aid, raw in st.pop("_malformed_raw", {}).items():  # a malformed entry is kept as it was
            st["alerts"].setdefault(aid, raw)
        st.pop("malformed", None)
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
