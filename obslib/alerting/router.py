"""``route_alerts``: the one way any alert (latency, operations, weekly) reaches people.

Interface: ``route_alerts(alerts, cfg=, ctx=, now=, dest=, source=)`` with alert dicts as
``obslib.alerts.make_alert`` builds them (``id`` stable per condition, ``severity``
info|warning|critical or ``resolved``, ``message``, ``next_action``; optional ``source``,
``kind``, ``route`` (a list of channels overriding the default) and ``attempt_log``).

1. Under the state lock, every alert updates its entry in ``ops/active_alerts.json``
   (``alerting.state``): first/last seen, severity, message. A channel of its route that
   has not had this severity yet gets a pending ``trigger``; ``resolved`` (or, with
   ``resolve_missing``, an alert of ``source`` that is no longer reported) gets a pending
   ``resolve`` on every channel that was triggered; an unresolved, unacknowledged
   critical whose last send is ``alerts.repeat_interval_s`` old gets a pending ``repeat``.
2. The pending sends (from this call and from earlier runs that could not send) go out
   criticals first, then warnings, oldest first, within ``budget``; what does not fit or
   fails stays pending for the next run. Only the latest state per alert id is kept, so a
   later run never sends a stale severity.
3. A 401/403 from a receiver raises its own alert ``receiver-rejected:<channel>``
   ("receiver rejected the signature or key (check secret rotation)"), routed like any
   critical (not to the channel that refused).

Default routes (``default_route``): warning -> Slack; critical -> PagerDuty and Slack; a
weekly delivery that exhausted its attempts (``kind: delivery_exhausted``) -> email (the
escalation webhook is posted by ``weekly.delivery.escalate``); info -> nowhere. Channels
that are not configured are skipped (``Destinations.channels``); an alert none of whose
route's channels is configured falls back to its severity's default route (a
``delivery_exhausted`` critical with no email pages PagerDuty and Slack); with nothing
configured it is counted in ``unrouted``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ..errors import LockTimeout
from ..storage import file_lock
from ..timeutil import parse_ts, to_rfc3339
from . import channels as ch
from .state import SEVERITY_RANK, locked_state

ROUTES = {"warning": ("slack",), "critical": ("pagerduty", "slack"), "info": ()}
KIND_ROUTES = {"delivery_exhausted": ("email",)}
DELIVER_LOCK = "active_alerts.deliver.lock"
REJECTED_MESSAGE = "receiver rejected the signature or key (check secret rotation)"
MAX_ACK_BY, MAX_ACK_NOTE = 100, 1000
_CORE = ("id", "severity", "message", "next_action", "source", "kind", "owner")


def default_route(alert: dict) -> tuple[str, ...]:
    """The channels an alert goes to by default (see the module docstring)."""
    if alert.get("route") is not None:
        return tuple(alert["route"])
    if alert.get("kind") in KIND_ROUTES:
        return KIND_ROUTES[alert["kind"]]
    return ROUTES.get(alert.get("severity", ""), ())


def _route_for(alert: dict, available: set[str]) -> list[str]:
    """``default_route``, or -- when none of its channels is configured -- the default route
    of the alert's severity (a critical with no email configured still pages)."""
    route = list(default_route(alert))
    if available and not (set(route) & available):
        fallback = list(ROUTES.get(alert.get("severity", ""), ()))
        if set(fallback) & available:
            return fallback
    return route


def _entry(alert: dict, source: str, now: str) -> dict:
    details = {k: v for k, v in alert.items() if k not in _CORE and k not in ("route",)}
    return {"id": alert["id"], "severity": alert["severity"], "message": alert.get("message", ""),
            "next_action": alert.get("next_action"), "source": alert.get("source") or source, "kind": alert.get("kind"),
            "origin": source, "first_seen": now, "last_seen": now, "acknowledged_by": None, "acknowledged_at": None,
            "ack_note": None, "resolved_at": None, "route": list(default_route(alert)), "channels": {},
            "details": details}


def _pending(entry: dict, channel: str, event: str) -> None:
    entry["channels"].setdefault(channel, {"last_sent_at": None, "attempts": 0, "last_error": None})
    entry["channels"][channel].update(status="pending", event=event, severity=entry["severity"])


def _apply(st: dict, alerts: Iterable[dict], *, source: str, now: datetime, available: set[str],
           resolve_missing: bool, repeat_s: float, scope: str | None = None) -> None:
    t = to_rfc3339(now)
    act = st["alerts"]
    seen = set()
    for a in alerts:
        aid = str(a["id"])
        sev = a.get("severity")
        if sev == "resolved":
            if aid in act and not act[aid].get("resolved_at"):
                _resolve(act[aid], t, available)
            continue
        if sev not in SEVERITY_RANK:
            continue
        seen.add(aid)
        e = act.get(aid)
        if scope is not None and e is not None and not e.get("resolved_at") and str(e.get("scope") or "") > scope:
            continue  # a later scope (week) owns this alert: an older report never touches it
        if e is None or e.get("resolved_at"):
            e = act[aid] = _entry(a, source, t)
            e["route"] = _route_for(a, available)
            if scope is not None:
                e["scope"] = scope
        else:
            if SEVERITY_RANK[sev] > SEVERITY_RANK.get(e.get("severity"), 0):  # escalated: a new ack is needed
                e.update(acknowledged_by=None, acknowledged_at=None, ack_note=None)
            e.update(severity=sev, message=a.get("message", e.get("message")), last_seen=t,
                     route=_route_for(a, available))
            e["details"].update({k: v for k, v in a.items() if k not in _CORE and k != "route"})
        for c in e["route"]:
            if c not in available:
                continue
            cs = e["channels"].get(c)
            if cs is None or cs.get("event") == "resolve" or cs.get("severity") != sev:
                _pending(e, c, "trigger")
        for c, cs in e["channels"].items():  # de-escalated: take the page back, keep the rest
            if c == "pagerduty" and c not in e["route"] and cs.get("last_sent_at") and cs.get("event") != "resolve":
                _pending(e, c, "resolve")
    if resolve_missing:
        for aid, e in act.items():
            # only this scope's (or an older scope's) alerts: re-running an old week never
            # resolves the current week's alerts
            if e.get("origin") == source and aid not in seen and not e.get("resolved_at") and \
                    (scope is None or e.get("scope") is None or str(e["scope"]) <= scope):
                _resolve(e, t, available)
    for e in act.values():  # a channel configured since the alert was raised gets its current state
        if not e.get("resolved_at"):
            for c in e.get("route") or ():
                if c in available and c not in e["channels"]:
                    _pending(e, c, "trigger")
    for e in act.values():  # repeats of unresolved, unacknowledged criticals
        if e.get("severity") != "critical" or e.get("resolved_at") or e.get("acknowledged_at"):
            continue
        for c, cs in e["channels"].items():
            if cs.get("status") == "sent" and cs.get("last_sent_at") and c in available and \
                    (now - parse_ts(cs["last_sent_at"])).total_seconds() >= repeat_s:
                _pending(e, c, "repeat")


def _resolve(e: dict, t: str, available: set[str]) -> None:
    e["resolved_at"] = t
    for c, cs in e["channels"].items():
        if c in available and (cs.get("last_sent_at") or cs.get("status") == "sent"):
            _pending(e, c, "resolve")
        else:  # never reached this channel: nothing to take back
            cs.update(status="dropped", event="resolve")


def _queue(st: dict, available: set[str]) -> list[tuple[str, str, str]]:
    """Pending ``(alert id, channel, event)``: criticals first, then warnings; oldest first."""
    items = []
    for aid, e in st["alerts"].items():
        for c, cs in e["channels"].items():
            if cs.get("status") in ("pending", "failed") and c in available:
                rank = -SEVERITY_RANK.get(e.get("severity"), 0)
                items.append((rank, e.get("first_seen") or "", aid, c, cs["event"]))
    return [(aid, c, ev) for _r, _f, aid, c, ev in sorted(items)]


def _finish_resolved(st: dict) -> None:
    for aid in list(st["alerts"]):
        e = st["alerts"][aid]
        if e.get("resolved_at") and all(cs.get("status") in ("sent", "dropped") for cs in e["channels"].values()):
            st["resolved"].append({k: e.get(k) for k in ("id", "severity", "first_seen", "resolved_at",
                                                          "acknowledged_at", "acknowledged_by")})
            del st["alerts"][aid]


def route_alerts(alerts: list[dict], *, cfg: Any, ctx: Any, now: datetime, dest: Any, source: str,
                 resolve_missing: bool = False, scope: str | None = None, budget: Any = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Record ``alerts`` as active and send what is due (see the module docstring).

    ``dest``: ``alerting.Destinations`` (parsed at the edge). ``source``: the job routing
    them (``latency``, ``nightly_check``, ``weekly_report``). ``scope``: an ordered key
    (the weekly report's ``week_start``, ``YYYY-MM-DD``) recorded on new entries;
    ``resolve_missing`` then resolves only missing alerts of ``source`` whose scope is this
    one or older, and an alert owned by a later scope is left alone. ``budget``:
    ``webhook.Budget`` for all sends of this call (None: unlimited). Returns
    ``{active, sent: [{id, channel, event}], failed: [{id, channel, event, error}], pending,
    unrouted: [ids of warnings/criticals with no configured channel], busy}``. Raises
    ``LockTimeout`` when the state lock stays busy past ``cfg.lock_timeout_s``.
    """
    from ..webhook import Budget

    budget = budget or Budget(None)
    available = dest.channels() if dest is not None else set()
    repeat_s = float(cfg.alerts.repeat_interval_s)
    with locked_state(cfg.ops_dir, now, cfg.lock_timeout_s) as st:
        _apply(st, alerts, source=source, now=now, available=available, resolve_missing=resolve_missing,
               repeat_s=repeat_s, scope=scope)
        _finish_resolved(st)
        queue = _queue(st, available)
        unrouted = sorted(aid for aid, e in st["alerts"].items() if not e.get("resolved_at")
                          and e.get("severity") in ("warning", "critical")
                          and not (set(e.get("route") or ()) & available))
        active = len(st["alerts"])
    report: dict[str, Any] = {"active": active, "sent": [], "failed": [], "pending": len(queue), "unrouted": unrouted,
                              "busy": False}
    if not queue:
        return report
    try:
        with file_lock(cfg.ops_dir / DELIVER_LOCK, 1.0):
            results = _deliver(queue, cfg=cfg, ctx=ctx, now=now, dest=dest, budget=budget, sleep=sleep, clock=clock)
    except LockTimeout:
        report["busy"] = True  # another run is delivering; what is pending stays for the next one
        return report
    rejected = []
    with locked_state(cfg.ops_dir, now, cfg.lock_timeout_s) as st:
        for (aid, c, ev), res in results:
            e = st["alerts"].get(aid)
            if e is None or c not in e["channels"]:
                continue
            cs = e["channels"][c]
            if cs.get("event") != ev:  # a newer state arrived meanwhile: it stays pending
                continue
            cs["attempts"] = int(cs.get("attempts") or 0) + res.attempts
            if res.ok:
                cs.update(status="sent", last_sent_at=to_rfc3339((clock or (lambda: now))()), last_error=None)
                report["sent"].append({"id": aid, "channel": c, "event": ev})
            else:
                cs.update(status="failed", last_error=res.error)
                report["failed"].append({"id": aid, "channel": c, "event": ev, "error": res.error})
                if res.rejected:
                    rejected.append(c)
        _finish_resolved(st)
        report["pending"] = len(_queue(st, available))
        report["active"] = len(st["alerts"])
    if rejected and source != "receiver-rejected":
        from ..alerts import make_alert

        extra = [make_alert(f"receiver-rejected:{c}", "critical", f"{c}: {REJECTED_MESSAGE}", anchor="secrets-rotation",
                            owner=cfg.owner, runbook=cfg.runbook, kind="receiver_rejected",
                            route=[x for x in ROUTES["critical"] if x != c])
                 for c in sorted(set(rejected))]
        sub = route_alerts(extra, cfg=cfg, ctx=ctx, now=now, dest=dest, source="receiver-rejected", budget=budget,
                           sleep=sleep, clock=clock)
        report["sent"] += sub["sent"]
        report["failed"] += sub["failed"]
        report["rejected"] = sorted(set(rejected))
    return report


def brief(report: dict[str, Any]) -> dict[str, Any]:
    """A routing report for a summary line: counts, and the first failures."""
    return {"active": report["active"], "sent": len(report["sent"]), "failed": len(report["failed"]),
            "pending": report["pending"], "unrouted": len(report["unrouted"]),
            "errors": [f"{f['id']} -> {f['channel']}: {f['error']}" for f in report["failed"][:5]]}


def _deliver(queue, *, cfg, ctx, now, dest, budget, sleep, clock) -> list:
    from ..alerting.state import read_state

    entries = read_state(cfg.ops_dir)["alerts"]
    out = []
    for aid, c, ev in queue:
        if budget.spent():
            break
        e = entries.get(aid)
        if e is None:
            continue
        res = ch.send(c, e, ev, dest=dest, cfg=cfg, ctx=ctx, now=(clock or (lambda: now))(), budget=budget,
                      sleep=sleep)
        out.append(((aid, c, ev), res))
    return out


def acknowledge(alert_id: str, *, by: str, note: str | None, cfg: Any, ctx: Any, now: datetime, dest: Any,
                budget: Any = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Acknowledge active alert ``alert_id``: record who/when/note and the time to
    acknowledge (``acks``), stop its repeats, and send a PagerDuty ``acknowledge`` when
    PagerDuty was triggered for it. Returns ``{id, acknowledged_by, acknowledged_at,
    time_to_ack_s, sent, failed}``; an alert acknowledged already keeps its first
    acknowledgement (who, when, note) and nothing is re-sent: ``already_acknowledged: True``
    with the first one's fields. Raises ``InputError`` for an unknown id, a ``by`` longer
    than ``MAX_ACK_BY`` or a ``note`` longer than ``MAX_ACK_NOTE`` characters."""
    from ..errors import InputError

    if not by or len(by) > MAX_ACK_BY:
        raise InputError("--by", f"must be 1..{MAX_ACK_BY} characters (got {len(by or '')})")
    if note is not None and len(note) > MAX_ACK_NOTE:
        raise InputError("--note", f"at most {MAX_ACK_NOTE} characters (got {len(note)})")

    available = dest.channels() if dest is not None else set()
    t = to_rfc3339(now)
    with locked_state(cfg.ops_dir, now, cfg.lock_timeout_s) as st:
        e = st["alerts"].get(alert_id)
        if e is None:
            known = ", ".join(sorted(st["alerts"])[:10]) or "none"
            raise InputError("ops/active_alerts.json", f"no active alert {alert_id!r} (active: {known})")
        if e.get("acknowledged_at"):  # the first acknowledgement stands; nothing is re-sent
            tta = (parse_ts(e["acknowledged_at"]) - parse_ts(e["first_seen"])).total_seconds()
            return {"id": alert_id, "already_acknowledged": True, "acknowledged_by": e.get("acknowledged_by"),
                    "acknowledged_at": e["acknowledged_at"], "ack_note": e.get("ack_note"),
                    "time_to_ack_s": round(tta, 1), "goal_s": cfg.alerts.ack_goal_s, "sent": [], "failed": []}
        e.update(acknowledged_by=by, acknowledged_at=t, ack_note=note)
        tta = (now - parse_ts(e["first_seen"])).total_seconds()
        st["acks"].append({"id": alert_id, "severity": e.get("severity"), "first_seen": e["first_seen"],
                           "acknowledged_at": t, "time_to_ack_s": round(tta, 1), "by": by})
        for c, cs in e["channels"].items():
            if c == "pagerduty" and cs.get("last_sent_at"):
                _pending(e, c, "acknowledge")
            elif cs.get("event") == "repeat" and cs.get("status") == "pending":
                cs.update(status="sent", event="trigger")  # the repeat is no longer due
        queue = [(alert_id, c, "acknowledge") for c, cs in e["channels"].items()
                 if cs.get("event") == "acknowledge" and cs.get("status") == "pending" and c in available]
    out = {"id": alert_id, "acknowledged_by": by, "acknowledged_at": e["acknowledged_at"],
           "time_to_ack_s": round(tta, 1), "goal_s": cfg.alerts.ack_goal_s, "sent": [], "failed": []}
    if queue:
        from ..webhook import Budget

        results = _deliver(queue, cfg=cfg, ctx=ctx, now=now, dest=dest, budget=budget or Budget(30.0), sleep=sleep,
                           clock=None)
        with locked_state(cfg.ops_dir, now, cfg.lock_timeout_s) as st:
            for (aid, c, ev), res in results:
                cs = st["alerts"].get(aid, {}).get("channels", {}).get(c)
                if cs is not None and res.ok:
                    cs.update(status="sent", event="trigger", last_sent_at=cs.get("last_sent_at"), last_error=None)
                    out["sent"].append({"channel": c, "event": ev})
                elif cs is not None:
                    cs.update(status="failed", last_error=res.error)
                    out["failed"].append({"channel": c, "event": ev, "error": res.error})
    return out


def send_job_summary(cfg: Any, ctx: Any, out: dict[str, Any], *, ok: bool) -> str | None:
    """``[alerts] summary_channel`` (slack | webhook): one message per job run, "<job> ok in
    12.3 s" or "<job> error: <reason>". Not an alert: no state, no repeat; recorded in
    ``ops/alerts_sent.log``. Returns None, or why it was not sent (never raises)."""
    from ..webhook import Budget

    channel = cfg.alerts.summary_channel
    dest = getattr(ctx, "destinations", None)
    if dest is None or channel not in dest.channels():
        return f"{channel} is not configured"
    status = out.get("status")
    msg = f"{ctx.job_name} {status} in {ctx.elapsed_ms() / 1000:.1f} s (job {ctx.job_id})"
    if not ok and out.get("error"):
        msg += f": {str(out['error'])[:300]}"
    entry = {"id": f"run-summary:{ctx.job_name}", "severity": "info" if ok else "warning", "message": msg,
             "next_action": f"{cfg.runbook}#missed-runs", "source": ctx.job_name, "first_seen": to_rfc3339(ctx.now),
             "last_seen": to_rfc3339(ctx.now), "channels": {}}
    try:
        res = ch.send(channel, entry, "trigger", dest=dest, cfg=cfg, ctx=ctx, now=ctx.now, budget=Budget(15.0),
                      sleep=time.sleep)
    except Exception as exc:  # noqa: BLE001 - a summary never changes the job's outcome
        return exc.__class__.__name__
    return None if res.ok else res.error
