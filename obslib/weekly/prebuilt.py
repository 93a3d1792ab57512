"""One payload build per run.

The report needs two payloads: the week's (published as ``payload.json``) and the
previous week's (for the key figures' changes). ``build_payloads`` builds both from the
notebook's parameters. The weekly job (``obslib.weekly.job``) calls it in its own process
while the report kernel starts, so bad input stops the job with a clean ``InputError``
before any cell runs, and hands the result to the notebook in its staging folder
(``PREBUILT_FILE``). The notebook's ``report.prepare_weekly`` uses that hand-over only
when it was built from exactly the notebook's parameters (``out_dir`` aside) and its
content fits them (``take_over``); a notebook run any other way (a re-run by hand,
papermill directly, another job id) builds the payloads itself. Either way the payloads
come from the same call with the same values (the job's obs.toml is the notebook's
``config_file`` parameter), so the page and ``payload.json`` are the same as if the kernel
had built them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ObsError
from ..inputs import data_label as default_data_label
from ..inputs import resolve_data_root
from ..schemas import errors, validate
from ..storage import atomic_write_json, read_json_object
from ..timeutil import parse_ts, parse_week_start, to_rfc3339, utcnow, week_start_of
from . import SCHEMA_FILE

PREBUILT_FILE = ".prebuilt-payloads.json"  # in the job's staging folder; never published


@dataclass
class Payloads:
    """The week's ``payload`` (schema-validated), the ``previous`` week's (None when it
    could not be built) and the data ``root`` they were read from."""

    payload: dict
    previous: dict | None
    root: Path


def build_payloads(cfg: Config, params: dict[str, Any]) -> Payloads:
    """Both payloads for the notebook parameters ``params`` (``report.WEEKLY_PARAMS``;
    blank values as the notebook documents them: ``as_of`` now, ``week_start`` the week
    containing it, ``data_root`` the demo repository, ``job_id`` ``notebook-<as_of>``).
    Raises ``InputError`` for bad input, ``ValidationError`` when the week's payload breaks
    its schema."""
    from .payload import build_weekly_payload  # here: a kernel that takes a hand-over never loads the builder

    now = parse_ts(params["as_of"]) if params.get("as_of") else utcnow()
    ws = parse_week_start(params["week_start"]) if params.get("week_start") else week_start_of(now)
    root = resolve_data_root(cfg, now)
    common = dict(cfg=cfg, now=now, command=params.get("source_command") or "notebooks/weekly_report.ipynb",
                  sha=params.get("commit_sha") or None, data_label=params.get("data_label") or default_data_label(cfg),
                  allow_bad_rows=bool(params.get("allow_bad_rows")))
    payload = build_weekly_payload(root, ws, job_id=params.get("job_id") or f"notebook-{now:%Y%m%dT%H%M%SZ}",
                                   **common)
    validate(payload, SCHEMA_FILE, "weekly payload")
    try:
        previous = build_weekly_payload(root, ws - timedelta(days=7), job_id="previous-week", **common)
    except ObsError:
        previous = None  # the changes then read "previous week: no data"
    return Payloads(payload, previous, Path(root))


def _key(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "out_dir"}


def hand_over(out_dir: Path, params: dict[str, Any], built: Payloads) -> Path:
    """Write ``built`` for the notebook run with ``params`` into ``out_dir`` (atomic)."""
    path = Path(out_dir) / PREBUILT_FILE
    atomic_write_json(path, {"params": _key(params), "payload": built.payload, "previous": built.previous})
    return path


def take_over(out_dir: Path | None, params: dict[str, Any]) -> Payloads | None:
    """The payloads handed over in ``out_dir`` for exactly these ``params`` (``out_dir``
    aside), or None, and the caller builds them itself: no hand-over, another run's (any
    other parameter value), a blank ``job_id`` or ``data_root`` (a by-hand run), an
    unreadable file, or content that does not fit the parameters (a week payload that
    fails its schema, another week, job id or generation time; a previous week's payload
    that is not the week before). The data root is always the parameter's, never the
    file's."""
    if out_dir is None or not params.get("job_id") or not params.get("data_root"):
        return None
    rec = read_json_object(Path(out_dir) / PREBUILT_FILE)
    if rec is None or rec.get("params") != _key(params):
        return None
    payload, previous = rec.get("payload"), rec.get("previous")
    if not isinstance(payload, dict) or errors(payload, SCHEMA_FILE, limit=1):
        return None
    ws = parse_week_start(params["week_start"]) if params.get("week_start") else None
    fits = (payload["provenance"].get("job_id") == params["job_id"]
            and (not params.get("as_of") or payload["generated_at"] == to_rfc3339(parse_ts(params["as_of"])))
            and (ws is None or parse_ts(payload["week_start"]) == ws)
            and (previous is None or (isinstance(previous, dict)
                                      and parse_ts(str(previous.get("week_start"))) ==
                                      parse_ts(payload["week_start"]) - timedelta(days=7))))
    if not fits:
        return None
    return Payloads(payload, previous, Path(params["data_root"]))


__all__ = ["PREBUILT_FILE", "Payloads", "build_payloads", "hand_over", "take_over"]
