"""``obs config show``: the effective configuration, where each value came from, secrets redacted.

Layers, lowest first: ``default`` < ``obs.toml`` < ``environment`` (``OBS_<SECTION>_<KEY>``)
< ``flag``. The configuration is loaded (and so validated) exactly as a job loads it;
this module only explains it. Destinations and secrets are listed by variable name with
``set (redacted)`` / ``not set``: their values are never printed.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import _SECTIONS, Config, _env_values
from .schedule import load_schedule

SECRET_ENV_NAMES = ("OBS_WEEKLY_WEBHOOK_URL", "OBS_ALERT_WEBHOOK_URL", "OBS_ESCALATION_WEBHOOK_URL",
                    "OBS_WEBHOOK_SECRET", "OBS_SLACK_WEBHOOK_URL", "OBS_PAGERDUTY_ROUTING_KEY",
                    "OBS_PAGERDUTY_EVENTS_URL", "OBS_SMTP_PASSWORD")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k in _SECTIONS and not prefix:
            out.update(_flatten(v, f"{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def _value(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    if isinstance(v, list):
        return [_value(x) for x in v]
    return v


def describe(cfg: Config, *, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None,
             config_file: str | None = None) -> dict[str, Any]:
    """``{config_file, settings: [{key, value, source}], destinations: [{name, state}],
    schedule: [{job, cron, grace_s}], data: demo|configured}`` for ``cfg`` (already loaded
    and validated with the same ``env``, ``overrides`` and ``config_file``)."""
    explicit = config_file or env.get("OBS_CONFIG")
    toml_path = Path(explicit) if explicit else Path(cfg.work_root) / "obs.toml"
    toml_keys: set[str] = set()
    if toml_path.exists():
        toml_keys = set(_flatten(tomllib.loads(toml_path.read_text(encoding="utf-8"))))
    env_keys = {k: v for k, v in _flatten(_env_values(dict(env))).items()}
    flag_keys = set(_flatten({k: ({sk: sv for sk, sv in v.items() if sv is not None} if isinstance(v, dict) else v)
                              for k, v in (overrides or {}).items()}))
    rows = []
    for f in dataclasses.fields(cfg):
        if f.name in _SECTIONS:
            sec = getattr(cfg, f.name)
            keys = [(f"{f.name}.{sf.name}", getattr(sec, sf.name)) for sf in dataclasses.fields(sec)]
        else:
            keys = [(f.name, getattr(cfg, f.name))]
        for key, val in keys:
            if key in flag_keys:
                src = "flag"
            elif key in env_keys:
                src = "environment"
            elif key in toml_keys or key.split(".")[0] in toml_keys:
                src = f"obs.toml ({toml_path})"
            else:
                src = "default"
            if key == "work_root" and (env.get("OBS_WORK_ROOT") or flag_keys):
                src = "flag" if "work_root" in flag_keys else "environment"
            rows.append({"key": key, "value": _value(val), "source": src})
    dests = [{"name": n, "state": "set (redacted)" if (env.get(n) or "").strip() else "not set"}
             for n in SECRET_ENV_NAMES]
    dests += [{"name": k, "state": "set (redacted)"} for k in sorted(env) if k.startswith("OBS_PING_URL_") and env[k]]
    jobs = load_schedule(cfg.schedule)
    return {"config_file": str(toml_path) if toml_path.exists() else None, "settings": rows, "destinations": dests,
            "schedule": [{"job": j.name, "cron": j.cron, "grace_s": j.grace_s} for j in jobs],
            "data": "demo (generated)" if cfg.data_root is None else "configured"}


def render_text(doc: dict[str, Any]) -> str:
    """The human table: ``key = value    [source]`` lines, then destinations and schedule."""
    width = max((len(r["key"]) for r in doc["settings"]), default=10)
    lines = [f"# config file: {doc['config_file'] or 'none'}; data: {doc['data']}"]
    for r in doc["settings"]:
        if r["key"] in ("schedule", "latency.sources") and not r["value"]:
            continue
        lines.append(f"{r['key']:<{width}} = {r['value']!r:<40} [{r['source']}]")
    lines.append("# destinations and secrets (environment; values never shown)")
    lines += [f"{d['name']:<{width}} : {d['state']}" for d in doc["destinations"]]
    lines.append("# schedule (UTC)")
    lines += [f"{s['job']:<{width}} : {s['cron']} (grace {s['grace_s']} s)" for s in doc["schedule"]]
    return "\n".join(lines) + "\n"


__all__ = ["describe", "render_text", "SECRET_ENV_NAMES"]
