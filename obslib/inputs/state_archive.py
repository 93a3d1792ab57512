"""EV-gate state snapshots: ``ops/state_archive/<strategy>/<symbol>/<mode>/*.json``.

Every ``<strategy>/<symbol>/<mode>`` folder is read (none is hard-coded). Files at other
depths (the flat ``grid_*`` files at the top level) are not in the layout and are
skipped with one ``ignored`` problem. A snapshot's time is the UTC stamp its file name
starts with (``YYYYMMDD_HHMMSS``). ``strategy`` is the canonical strategy id of the
folder name (``inputs.strategy.strategy_id``: ``strategies.day_orb_5m.DayORB5m`` ->
``day_orb_5m``), the folder name itself is ``strategy_source``.
"""

from __future__ import annotations

from pathlib import Path

from ..stats import win_rate_lcb
from ..timeutil import first_stamp_from_name
from . import Problem, read_json_file
from .strategy import strategy_id

ARCHIVE_REL = "ops/state_archive"


def parse_snapshot(path: Path, rel_path: str, problems: list[Problem]) -> dict | None:
    """One snapshot as ``{path, strategy, strategy_source, symbol, mode, generated_at (aware UTC), ev_alpha,
    ev_beta, prior_alpha, prior_beta, ev_decay, conf, win_rate_lcb (fraction)}``; None
    (and a ``malformed`` problem) when the file does not parse or lacks ``ev_global``.
    Raises ``UnreadableInput`` (naming ``rel_path``) when the file cannot be read."""
    stamp = first_stamp_from_name(path.name)
    if stamp is None:
        problems.append(Problem("malformed", rel_path, "file name does not start with a YYYYMMDD_HHMMSS stamp"))
        return None
    parsed, data = read_json_file(path, rel_path, problems)
    if not parsed:
        return None
    ev = data.get("ev_global") if isinstance(data, dict) else None
    if not isinstance(ev, dict) or "alpha" not in ev or "beta" not in ev:
        problems.append(Problem("malformed", rel_path, "no ev_global{alpha,beta}"))
        return None
    try:
        alpha, beta_ = float(ev["alpha"]), float(ev["beta"])
        pa, pb = float(ev.get("prior_alpha") or 0.0), float(ev.get("prior_beta") or 0.0)
        conf = float(ev.get("conf") if ev.get("conf") is not None else 0.95)
        decay = None if ev.get("decay") is None else float(ev["decay"])
        lcb = win_rate_lcb(alpha, beta_, pa, pb, conf)
    except (TypeError, ValueError) as exc:
        problems.append(Problem("malformed", rel_path, f"ev_global: {exc}"))
        return None
    parts = Path(rel_path).parts
    return {"path": rel_path, "strategy": strategy_id(parts[-4]), "strategy_source": parts[-4], "symbol": parts[-3], "mode": parts[-2],
            "generated_at": stamp, "ev_alpha": alpha, "ev_beta": beta_, "prior_alpha": pa, "prior_beta": pb,
            "ev_decay": decay, "conf": conf, "win_rate_lcb": lcb}


def read_state_archive(data_root: Path, problems: list[Problem]) -> list[dict]:
    """Every snapshot in the layout, sorted by (strategy, symbol, mode, generated_at, path).
    A missing archive folder is an optional input: empty list plus a ``missing`` problem."""
    root = Path(data_root) / ARCHIVE_REL
    if not root.is_dir():
        problems.append(Problem("missing", ARCHIVE_REL, "state archive folder not found"))
        return []
    out, skipped = [], 0
    for p in sorted(root.rglob("*.json")):
        depth = len(p.relative_to(root).parts)
        if depth != 4:
            skipped += 1
            continue
        rec = parse_snapshot(p, f"{ARCHIVE_REL}/{p.relative_to(root).as_posix()}", problems)
        if rec:
            out.append(rec)
    if skipped:
        problems.append(Problem("ignored", ARCHIVE_REL, f"{skipped} file(s) outside <strategy>/<symbol>/<mode>/ skipped"))
    out.sort(key=lambda r: (r["strategy"], r["symbol"], r["mode"], r["generated_at"], r["path"]))
    return out
