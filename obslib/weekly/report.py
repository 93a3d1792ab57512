"""Helpers behind ``notebooks/weekly_report.ipynb``: parameter checks, the payload build,
tables with one-line readings, and the three plots. The notebook only calls these.

Tables are ``Table`` objects (rows of plain values, rendered as HTML by ``tabulate``);
the report kernel imports matplotlib but not pandas, which keeps ``make weekly`` close
to the cost of papermill itself (see ``bench/weekly.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ObsError
from ..inputs import resolve_data_root
from ..schemas import validate
from ..storage import atomic_write_bytes, pretty_json_bytes, scratch_dir
from ..timeutil import parse_ts, parse_week_start, utcnow, week_start_of
from .payload import SCHEMA_FILE, build_weekly_payload

WEEKLY_PARAMS: dict[str, type] = {
    "week_start": str, "data_root": str, "as_of": str, "out_dir": str, "work_root": str, "job_id": str,
    "source_command": str, "commit_sha": str, "data_label": str, "allow_bad_rows": bool,
}


def check_params(params: dict[str, Any]) -> None:
    """Raise ``ObsError`` naming an unknown parameter or one of the wrong type (``WEEKLY_PARAMS``)."""
    unknown = sorted(set(params) - set(WEEKLY_PARAMS))
    if unknown:
        raise ObsError(f"unknown notebook parameter(s) {unknown}; known: {sorted(WEEKLY_PARAMS)}")
    for k, v in params.items():
        if not isinstance(v, WEEKLY_PARAMS[k]):
            raise ObsError(f"notebook parameter {k!r} must be {WEEKLY_PARAMS[k].__name__}, got {type(v).__name__} "
                           f"({v!r})")


@dataclass
class WeeklyReport:
    payload: dict
    payload_path: Path
    data_root: Path


def prepare_weekly(*, week_start: str = "", data_root: str = "", as_of: str = "", out_dir: str = "",
                   work_root: str = "", job_id: str = "", source_command: str = "", commit_sha: str = "",
                   data_label: str = "", allow_bad_rows: bool = False) -> WeeklyReport:
    """Build, validate and write ``<out_dir>/payload.json``.

    Blank parameters mean: ``as_of`` now, ``week_start`` the week containing ``as_of``,
    ``data_root`` the demo repository (under ``work_root``, a temp folder when blank),
    ``out_dir`` a temp folder. Raises ``ObsError``/``InputError``/``ValidationError``.
    """
    check_params({k: v for k, v in locals().items()})
    now = parse_ts(as_of) if as_of else utcnow()
    ws = parse_week_start(week_start) if week_start else week_start_of(now)
    wr = Path(work_root) if work_root else scratch_dir("weekly")
    cfg = load_config(wr, overrides={"data_root": data_root or None})
    root = resolve_data_root(cfg, now)
    payload = build_weekly_payload(root, ws, cfg=cfg, now=now, job_id=job_id or f"notebook-{now:%Y%m%dT%H%M%SZ}",
                                   command=source_command or "notebooks/weekly_report.ipynb",
                                   sha=commit_sha or None, data_label=data_label or ("demo" if cfg.uses_demo else
                                                                                     Path(root).name),
                                   allow_bad_rows=allow_bad_rows)
    validate(payload, SCHEMA_FILE, "weekly payload")
    out = Path(out_dir) if out_dir else scratch_dir("weekly-out")
    path = out / "payload.json"
    atomic_write_bytes(path, pretty_json_bytes(payload))
    return WeeklyReport(payload, path, Path(root))


@dataclass(repr=False)
class Table:
    """One report section: ``rows`` (dicts keyed by ``columns``; units in the column names)
    and a one-line ``reading``. Displays as an HTML table in notebooks (``tabulate``) and
    as the plain-text table elsewhere (``str``, ``repr``, text/plain output); blank cells
    are missing values."""

    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    reading: str = ""

    def _cells(self) -> list[list]:
        return [[r.get(c) for c in self.columns] for r in self.rows]

    def _render(self, fmt: str) -> str:
        from tabulate import tabulate

        return str(tabulate(self._cells(), headers=self.columns, tablefmt=fmt, missingval="",
                            disable_numparse=True))  # values as given: exact numbers, no reformatting

    def _repr_html_(self) -> str:
        return self._render("html")

    def __str__(self) -> str:
        return self._render("simple")

    __repr__ = __str__  # the notebook's text/plain output: the table, not the dataclass fields

    def column(self, name: str) -> list:
        return [r.get(name) for r in self.rows]


RUN_COLUMNS = ["kind", "run_id", "ev_latest_pips", "ev_trend_7d_pips", "win_rate_lcb", "avg_trades_per_day",
               "as_of", "stale"]


def runs_table(p: dict) -> Table:
    """Baseline and rolling benchmarks (EV in pips per trade, win-rate LCB a fraction)."""
    rows = [{"kind": "baseline", "run_id": b["run_id"], "ev_latest_pips": b["ev"]["latest"],
             "ev_trend_7d_pips": b["ev"]["trend_7d"], "win_rate_lcb": b["win_rate_lcb"],
             "as_of": b.get("as_of"), "stale": b.get("stale")} for b in p["runs"]["baseline"]]
    rows += [{"kind": "rolling", "run_id": r["run_id"], "ev_latest_pips": r["ev"]["latest"],
              "avg_trades_per_day": r["turnover"]["avg_trades_per_day"], "as_of": r.get("as_of"),
              "stale": r.get("stale")} for r in p["runs"]["rolling"]]
    if not rows:
        return Table(RUN_COLUMNS, [], "No benchmark was usable for this week (see alerts).")
    stale = sum(1 for r in rows if r["stale"])
    b = p["runs"]["baseline"]
    lead = (f"Baseline EV {b[0]['ev']['latest']} pips/trade, win-rate LCB {b[0]['win_rate_lcb']}"
            if b else "No baseline")
    return Table(RUN_COLUMNS, rows, f"{lead}; {len(rows)} benchmark(s), {stale} stale.")


def utilisation_table(p: dict) -> Table:
    """Router utilisation per category (percent of equity) with its status."""
    cats = p["utilisation"]["categories"]
    cols = ["name", "utilisation_pct", "budget_pct", "headroom_pct", "status"]
    if not cats:
        return Table(cols, [], "No router telemetry: utilisation unknown (see alerts).")
    bad = [c for c in cats if c["status"] != "ok"]
    reading = ("All categories within budget." if not bad else
               "Attention: " + ", ".join(f"{c['name']} {c['status']}" for c in bad) + ".")
    return Table(cols, cats, reading)


def execution_table(p: dict) -> Table:
    """Slippage (bps) and reject rate (fraction) per strategy."""
    eh = p["execution_health"]
    names = sorted(set(eh["slippage_bps"]) | set(eh["reject_rate"]))
    rows = [{"strategy": n, "slippage_bps": eh["slippage_bps"].get(n), "reject_rate": eh["reject_rate"].get(n)}
            for n in names]
    cols = ["strategy", "slippage_bps", "reject_rate"]
    with_slip = [r for r in rows if r["slippage_bps"] is not None]
    if not with_slip:
        return Table(cols, rows, "No execution health data." if not rows else "No slippage data.")
    worst = max(with_slip, key=lambda r: r["slippage_bps"])
    return Table(cols, rows, f"Highest slippage: {worst['strategy']} at {worst['slippage_bps']} bps.")


# the keys of a ``latency.sources`` entry of the weekly payload, in ``weekly._latency``'s order
LATENCY_COLUMNS = ["source", "samples", "p50_ms", "p95_ms"]


def latency_table(p: dict) -> Table:
    """Per-source latency for the week (ms): columns ``LATENCY_COLUMNS`` (even with no
    source), then any other key a source entry carries, sorted."""
    lat = p["latency"]
    sources = lat["sources"]
    cols = LATENCY_COLUMNS + sorted({k for s in sources for k in s} - set(LATENCY_COLUMNS))
    if lat["p95_ms"] is None:
        return Table(cols, sources, "No latency samples this week: latency is unknown, not zero.")
    return Table(cols, sources, f"Week p95 {lat['p95_ms']:.0f} ms over {lat['samples']} samples "
                                f"(SLO {lat['slo_ms']:.0f} ms); {len(lat['breaches'])} breach streak notification(s).")


def alerts_table(p: dict) -> Table:
    """The payload's alerts, most severe first (as in the payload)."""
    alerts = p["alerts"]
    counts: dict[str, int] = defaultdict(int)
    for a in alerts:
        counts[a["severity"]] += 1
    reading = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "No alerts."
    return Table(["severity", "message", "next_action", "id"], alerts, reading)


def latency_hourly(data_root: Path, p: dict) -> dict[str, list[tuple]]:
    """``{source: [(hour_start datetime UTC, p95 ms), ...]}`` in time order: the payload's
    ``latency.hourly`` series, computed by the latency query (``obslib.latency.model.query``,
    the same numbers as the hourly rollups). ``data_root`` is kept for the call signature."""
    out: dict[str, list[tuple]] = defaultdict(list)
    for h in sorted(p["latency"].get("hourly", []), key=lambda h: (h["source"], h["hour_utc"])):
        out[h["source"]].append((parse_ts(h["hour_utc"]), h["p95_ms"]))
    return dict(out)


def ev_history(data_root: Path, before: str) -> dict[str, list[tuple]]:
    """``{strategy/symbol/mode: [(generated_at, win_rate_lcb, win_rate_point), ...]}`` from
    every state-archive snapshot generated before ``before`` (RFC 3339), in time order; the
    point is the posterior mean (``stats.win_rate_point``, priors included)."""
    from ..inputs.state_archive import read_state_archive
    from ..stats import win_rate_point

    cutoff = parse_ts(before)
    out: dict[str, list[tuple]] = defaultdict(list)
    for r in read_state_archive(data_root, []):
        if r["generated_at"] >= cutoff:
            continue
        point = win_rate_point(r["ev_alpha"], r["ev_beta"], r["prior_alpha"], r["prior_beta"])
        out[f"{r['strategy']}/{r['symbol']}/{r['mode']}"].append((r["generated_at"], r["win_rate_lcb"], point))
    return dict(out)


def _axes(figsize: tuple[float, float], **margins: float):
    """A new figure's axes with fixed margins (fractions of the figure), so figures need
    no tight-bbox pass when saved (the notebook turns the inline backend's off)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    fig.subplots_adjust(**{"left": 0.1, "right": 0.95, "bottom": 0.15, "top": 0.88, **margins})
    return ax


# matplotlib's default cycle has 10 colours: keys 0-9 get ".", 10-19 "x", ... so lines stay distinct
EV_MARKERS = (".", "x", "^", "s")


def plot_ev_lcb(data_root: Path, week_end: str, ax=None):
    """EV-gate win rate over time per archive key (snapshots dated before week_end): the
    win-rate LCB (solid; marker ``EV_MARKERS[index // 10]``, as colours repeat after 10
    keys) and the posterior mean (dotted, same colour), both from ``ev_history``."""
    hist = ev_history(data_root, week_end)
    if ax is None:  # plot area 3.6 in high; below it the date labels and a 2-column legend
        below_in = 1.15 + 0.17 * ((len(hist) + 1) // 2)
        height = 3.6 + 0.4 + below_in
        ax = _axes((10, height), left=0.07, right=0.97, bottom=below_in / height, top=1 - 0.4 / height)
    if not hist:
        ax.set_title("EV gate: no state-archive snapshots")
        return ax
    for i, (key, pts) in enumerate(hist.items()):
        t = [x[0] for x in pts]
        (line,) = ax.plot(t, [x[1] for x in pts], marker=EV_MARKERS[(i // 10) % len(EV_MARKERS)], label=key)
        ax.plot(t, [x[2] for x in pts], linestyle=":", color=line.get_color(), alpha=0.7)
    ax.set_ylabel("win rate (fraction)")
    ax.set_title("EV gate: win-rate LCB (solid) and posterior mean (dotted)")
    ax.figure.autofmt_xdate(bottom=ax.figure.subplotpars.bottom)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.8 / 3.6), ncol=2, frameon=False,
              title="strategy/symbol/mode", title_fontsize=7)
    return ax


def plot_utilisation(p: dict, ax=None):
    """Bars: utilisation per category (percent of equity, coloured by status); marks: budget."""
    cats = p["utilisation"]["categories"]
    ax = ax or _axes((6, 3), left=0.13)
    if not cats:
        ax.set_title("Utilisation: no telemetry")
        return ax
    x = list(range(len(cats)))
    colours = {"breach": "tab:red", "warning": "tab:orange"}
    ax.bar(x, [c.get("utilisation_pct") or 0 for c in cats], color=[colours.get(c["status"], "tab:green") for c in cats])
    ax.scatter(x, [c["budget_pct"] for c in cats], marker="_", s=800, color="black", label="budget")
    ax.set_xticks(x, [c["name"] for c in cats])
    ax.set_ylabel("percent of equity")
    ax.set_title("Utilisation against budget")
    ax.legend()
    return ax


def plot_latency(hourly: dict[str, list[tuple]], slo_ms: float, ax=None):
    """Lines: hourly p95 (ms, log scale) per source from ``latency_hourly``; dashed: the SLO.
    With no samples: the SLO line on a linear 0..1.2 x SLO axis and "no samples this week"."""
    ax = ax or _axes((9, 3.5), bottom=0.2)
    ax.axhline(slo_ms, color="red", linestyle="--", label=f"SLO {slo_ms:.0f} ms")
    ax.set_ylabel("p95 latency (ms)")
    if not hourly:
        ax.set_title("Latency: no samples this week")
        ax.set_ylim(0, 1.2 * slo_ms)
        ax.text(0.5, 0.5, "no samples this week", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
        ax.legend(fontsize=7, loc="lower right")
        return ax
    for src, pts in hourly.items():
        ax.plot([h for h, _ in pts], [v for _, v in pts], label=src)
    ax.set_yscale("log")
    ax.set_title("Hourly p95 latency per source")
    ax.legend(fontsize=7)
    ax.figure.autofmt_xdate()
    return ax
