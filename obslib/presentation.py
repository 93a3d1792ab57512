"""How the report notebooks show numbers: tables, key-figure cards, a status banner and
plot conventions, shared by ``weekly/report.py`` and ``dashboard/report.py``.

Tables: units in the headers, one precision per column, text left-aligned and numbers
right-aligned, a blank cell for a missing value, ✓ for true, no index column, long tables
cut at ``max_rows`` with a note saying where the full data is. Rates (win rate, reject
rate) are fractions in the data and shown as percent everywhere, tables and plots alike.

Plots: fixed margins (``new_figure``), time axes in UTC and labelled so, the report
week shaded, markers when a series has few points, legends outside the data, and "no
data" said in words on an empty figure instead of an empty axis.

The HTML uses only the ``obs-*`` classes styled by the export template
(``obslib/templates/obslib_report``); nothing here loads anything from the network.
"""

from __future__ import annotations

import functools
import html
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .timeutil import parse_ts

MISSING = ""
TRUE_MARK = "✓"
SEVERITY_ORDER = ("critical", "warning", "info")
STATUS_WORDS = {"critical": "CRITICAL", "warning": "WARNING", "ok": "OK", "unknown": "NO DATA"}
# one colour per status, in tables, cards, banners and bars alike
STATUS_COLOURS = {"ok": "#2e7d32", "warning": "#ef8f00", "breach": "#c62828", "critical": "#c62828",
                  "unknown": "#757575"}
FEW_POINTS = 40  # series with at most this many points get markers


def _is_missing(v: Any) -> bool:
    """None, NaN, pandas NA/NaT."""
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    if type(v).__name__ in ("NAType", "NaTType"):
        return True
    return False


@dataclass(frozen=True)
class Col:
    """One table column: the row key, the header (with its unit) and how values show.

    Kinds: ``text`` (wraps), ``id`` (does not wrap), ``int`` (thousands separator),
    ``num`` (``digits`` decimals), ``signed`` (``num`` with a sign), ``pct`` (a fraction
    shown as percent with ``digits`` decimals), ``bool`` (✓ or blank), ``time`` (UTC,
    minutes), ``date``, ``html`` (trusted markup made here, e.g. a status pill)."""

    key: str
    header: str
    kind: str = "text"
    digits: int = 2

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "num", "signed", "pct")


def fmt_num(v: Any, digits: int = 2, signed: bool = False) -> str:
    """``1234.5`` -> ``1,234.50``; blank for missing."""
    if _is_missing(v):
        return MISSING
    return f"{float(v):{'+' if signed else ''},.{digits}f}"


def fmt_pct(v: Any, digits: int = 1, signed: bool = False) -> str:
    """A fraction as percent without the sign: ``0.0123`` -> ``1.2``; blank for missing."""
    return MISSING if _is_missing(v) else fmt_num(100.0 * float(v), digits, signed)


def fmt_time(v: Any, seconds: bool = False) -> str:
    """An RFC 3339 string or aware datetime as ``YYYY-MM-DD HH:MM`` (UTC); blank for missing."""
    if _is_missing(v):
        return MISSING
    ts = v if isinstance(v, datetime) else parse_ts(str(v))
    if hasattr(ts, "to_pydatetime"):
        ts = ts.to_pydatetime()
    return ts.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def cell_text(v: Any, col: Col) -> str:
    """The plain text of one cell (``html`` cells: their markup)."""
    if col.kind == "bool" or isinstance(v, bool):
        return TRUE_MARK if not _is_missing(v) and bool(v) else MISSING
    if _is_missing(v):
        return MISSING
    if col.kind == "int":
        return f"{int(v):,}"
    if col.kind in ("num", "signed"):
        return fmt_num(v, col.digits, signed=col.kind == "signed")
    if col.kind == "pct":
        return fmt_pct(v, col.digits)
    if col.kind == "time":
        return fmt_time(v)
    if col.kind == "date":
        return fmt_time(v)[:10]
    return str(v)


@dataclass(repr=False)
class Table:
    """Rows (dicts keyed by the columns' keys) shown as an HTML table in notebooks and as
    a plain-text table elsewhere (``str``/``repr``, text/plain output). ``reading`` is
    the one-line statement above the table; ``note`` a line below it. At most
    ``max_rows`` rows are shown; the note then says how many more there are."""

    columns: list[Col]
    rows: list[dict] = field(default_factory=list)
    reading: str = ""
    note: str = ""
    max_rows: int | None = None
    css_id: str | None = None
    empty: str = "No rows."

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.rows]

    def _shown(self) -> tuple[list[dict], str]:
        rows = self.rows if self.max_rows is None else self.rows[: self.max_rows]
        more = len(self.rows) - len(rows)
        note = self.note
        if more:
            note = f"{more:,} more row(s) not shown. " + note
        return rows, note.strip()

    def cells(self) -> list[list[str]]:
        """The shown rows as cell texts."""
        rows, _ = self._shown()
        return [[cell_text(r.get(c.key), c) for c in self.columns] for r in rows]

    def _repr_html_(self) -> str:
        rows, note = self._shown()
        out = ['<div class="obs-block">']
        if self.reading:
            out.append(f'<p class="obs-reading">{html.escape(self.reading)}</p>')
        if not rows:
            if self.empty:  # a blank ``empty``: nothing to say (the reading, if any, says it)
                out.append(f'<p class="obs-empty">{html.escape(self.empty)}</p>')
        else:
            ident = f' id="{html.escape(self.css_id)}"' if self.css_id else ""
            out.append(f'<table class="obs-table"{ident}><thead><tr>')
            out += [f'<th class="obs-{c.kind}{" obs-n" if c.numeric else ""}">{html.escape(c.header)}</th>'
                    for c in self.columns]
            out.append("</tr></thead><tbody>")
            for r in rows:
                tds = []
                for c in self.columns:
                    text = cell_text(r.get(c.key), c)
                    body = text if c.kind == "html" else html.escape(text)
                    tds.append(f'<td class="obs-{c.kind}{" obs-n" if c.numeric else ""}">{body}</td>')
                out.append("\n<tr>" + "".join(tds) + "</tr>")  # a row a line: readable output diffs
            out.append("\n</tbody></table>")
        if note:
            out.append(f'<p class="obs-note">{html.escape(note)}</p>')
        out.append("</div>")
        return "".join(out)

    def __str__(self) -> str:
        rows, note = self._shown()
        lines = [self.reading] if self.reading else []
        if rows:
            cells = [[_plain(cell_text(r.get(c.key), c), c) for c in self.columns] for r in rows]
            lines.append(plain_table(cells, [c.header for c in self.columns], [c.numeric for c in self.columns]))
        elif self.empty:
            lines.append(self.empty)
        if note:
            lines.append(note)
        return "\n".join(lines)

    __repr__ = __str__  # the notebook's text/plain output: the table, not the dataclass fields


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters two,
    combining marks none, others one (as ``wcwidth``)."""
    import unicodedata

    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def plain_table(cells: list[list[str]], headers: list[str], right: list[bool]) -> str:
    """A plain-text table, character for character ``tabulate(cells, headers, tablefmt="simple",
    disable_numparse=True, colalign=...)`` (``right[i]``: column ``i`` right-aligned), without
    importing tabulate (~30 ms of a report kernel): each column as wide as its widest line
    and at least its header plus 2, columns two spaces apart, a dashed line under the
    headers, cells stripped, a cell's lines on lines of their own (then a row of empty cells
    takes no line, as in tabulate), trailing blanks dropped."""
    multiline = any("\n" in str(c) or "\r" in str(c) for row in cells for c in row)
    rows = [[str(c).strip().splitlines() if multiline else [str(c).strip()] for c in row] for row in cells]
    widths = [max([text_width(h) + 2] + [text_width(ln) for row in rows for ln in row[i]])
              for i, h in enumerate(headers)]

    def pad(text: str, i: int) -> str:
        gap = " " * (widths[i] - text_width(text))
        return gap + text if right[i] else text + gap

    out = ["  ".join(pad(h, i) for i, h in enumerate(headers)).rstrip(), "  ".join("-" * w for w in widths)]
    for row in rows:
        for k in range(max(len(c) for c in row)):  # a row's height: its tallest cell
            out.append("  ".join(pad(c[k] if k < len(c) else "", i) for i, c in enumerate(row)).rstrip())
    return "\n".join(out)


def _plain(text: str, col: Col) -> str:
    """The text of an ``html`` cell without its tags (for the plain-text table)."""
    if col.kind != "html":
        return text
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", text))


def pill(status: str, text: str | None = None) -> str:
    """A coloured status label (``html`` cell)."""
    s = html.escape(status)
    return f'<span class="obs-pill obs-{s}">{html.escape(text or status)}</span>'


@dataclass(frozen=True)
class Figure:
    """One key figure: a label, a value with its unit, a detail line, the change from the
    previous period and a status (ok|warning|critical|unknown) for its colour."""

    label: str
    value: str
    unit: str = ""
    detail: str = ""
    change: str = ""
    status: str = "ok"
    lines: tuple[str, ...] = ()
    wide: bool = False  # two grid columns (a card with per-strategy lines)

    def html(self) -> str:
        unit = f' <span class="obs-unit">{html.escape(self.unit)}</span>' if self.unit else ""
        wide = " obs-wide" if self.wide else ""
        parts = [f'<div class="obs-card obs-{html.escape(self.status)}{wide}">',
                 f'<div class="obs-card-label">{html.escape(self.label)}</div>',
                 f'<div class="obs-card-value">{html.escape(self.value)}{unit}</div>']
        if self.lines:
            parts.append('<table class="obs-card-lines">' + "".join(
                "<tr>" + "".join(f'<td class="{"obs-n" if i else "obs-id"}">{html.escape(x)}</td>'
                                 for i, x in enumerate(line.split("\t"))) + "</tr>"
                for line in self.lines) + "</table>")
        if self.detail:
            parts.append(f'<div class="obs-card-detail">{html.escape(self.detail)}</div>')
        if self.change:
            parts.append(f'<div class="obs-card-change">{html.escape(self.change)}</div>')
        parts.append("</div>")
        return "".join(parts)

    def text(self) -> str:
        body = " ".join(x for x in (self.value, self.unit) if x)
        extra = "; ".join(x for x in (*[ln.replace("\t", " ") for ln in self.lines], self.detail, self.change) if x)
        return f"{self.label}: {body}" + (f" ({extra})" if extra else "")


@dataclass(repr=False)
class Summary:
    """The first screen of a report: a status banner, key figures and the alerts table.
    ``title`` is carried in the output's metadata (``obslib.title``): the HTML export uses
    it as the page's ``<title>``."""

    title: str
    status: str
    headline: str
    facts: list[str]
    figures: list[Figure]
    alerts: Table

    def _banner_html(self) -> str:
        facts = "".join(f'<span class="obs-fact">{html.escape(f)}</span>' for f in self.facts)
        return (f'<div class="obs-banner obs-{html.escape(self.status)}" id="obs-banner">'
                f'<span class="obs-status">{html.escape(STATUS_WORDS.get(self.status, self.status.upper()))}</span>'
                f'<div class="obs-banner-text"><div class="obs-title">{html.escape(self.title)}</div>'
                f'<div class="obs-headline">{html.escape(self.headline)}</div><div class="obs-facts">{facts}</div>'
                f"</div></div>")

    def _repr_html_(self) -> str:
        cards = "".join(f"\n{f.html()}" for f in self.figures)
        span = sum(2 if f.wide else 1 for f in self.figures)  # one row of cards
        return (f'<div class="obs-summary">{self._banner_html()}<div class="obs-cards" id="obs-key-figures" '
                f'style="grid-template-columns: repeat({span}, minmax(0, 1fr))">{cards}</div><h2 class="obs-h">Alerts</h2>{self.alerts._repr_html_()}</div>')

    def __str__(self) -> str:
        lines = [f"[{STATUS_WORDS.get(self.status, self.status)}] {self.title}", self.headline, " · ".join(self.facts),
                 ""]
        lines += [f.text() for f in self.figures]
        lines += ["", "Alerts", str(self.alerts)]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"text/plain": str(self), "text/html": self._repr_html_()}
        return data, {"obslib": {"title": self.title}}


def overall_status(severities: Iterable[str]) -> str:
    """critical when any alert is critical, else warning when any is a warning, else ok."""
    s = set(severities)
    return "critical" if "critical" in s else "warning" if "warning" in s else "ok"


def severity_counts(severities: Iterable[str]) -> str:
    """``2 critical, 3 warning`` (most severe first); ``no alerts`` when none."""
    sev = list(severities)
    parts = [f"{sev.count(s)} {s}" for s in SEVERITY_ORDER if sev.count(s)]
    return ", ".join(parts) or "no alerts"


def change(now: float | None, before: float | None, digits: int = 2, unit: str = "", scale: float = 1.0,
           what: str = "previous week") -> str:
    """``+0.12 pips/trade vs previous week`` / ``unchanged`` / ``previous week: no data``."""
    if now is None or before is None:
        return f"{what}: no data" if before is None else ""
    d = (float(now) - float(before)) * scale
    if round(d, digits) == 0:
        return f"unchanged vs {what}"
    return f"{d:+,.{digits}f}{(' ' + unit) if unit else ''} vs {what}"


# --- plots ---------------------------------------------------------------------------------

@functools.cache
def fixed_margin_figure_class() -> type:
    """The matplotlib ``Figure`` subclass that ``new_figure`` makes (created on first use, so
    importing this module does not import matplotlib). Inside an IPython kernel its PNG is
    registered to be saved with ``saved_bbox``: the figure as laid out, grown wherever a
    label sticks out of it. The inline backend's default ``bbox_inches="tight"`` draws every
    figure twice to find that box; ``saved_bbox`` measures it without drawing (~15 ms a
    plot less) and never crops the fixed margins. Every other figure in the kernel (an
    analyst's own cell) keeps the backend's settings."""
    from matplotlib.figure import Figure as MplFigure

    class FixedMarginFigure(MplFigure):
        """A figure whose margins are fixed in inches (``presentation.new_figure``)."""

    ipython = sys.modules.get("IPython")  # only when already loaded: the CLI never pays for IPython
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        from IPython.core.pylabtools import print_figure

        def png(fig):
            return print_figure(fig, "png", base64=True, bbox_inches=saved_bbox(fig))

        shell.display_formatter.formatters["image/png"].for_type(FixedMarginFigure, png)
    return FixedMarginFigure


def saved_bbox(fig, pad_in: float = 0.05):
    """The box (inches, a matplotlib ``Bbox``) a ``new_figure`` figure is saved with: the
    figure itself, grown by ``pad_in`` beyond every artist that sticks out of it (a long
    log-axis tick label, a wide legend), so nothing is ever cut at the edge. Measured with
    ``Figure.get_tightbbox``, without a draw."""
    from matplotlib.transforms import Bbox

    box = Bbox.from_bounds(0, 0, *fig.get_size_inches())
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    if tight is None or (tight.x0 >= 0 and tight.y0 >= 0 and tight.x1 <= box.x1 and tight.y1 <= box.y1):
        return box
    return Bbox.union([box, tight.padded(pad_in)])


def new_figure(width_in: float, height_in: float, *, left_in: float = 0.8, right_in: float = 0.3,
               top_in: float = 0.45, bottom_in: float = 0.6, ncols: int = 1, wspace: float = 0.35):
    """``(fig, axes)`` with margins fixed in inches (so no tight-bbox pass is needed and
    legends placed outside the axes fit in ``right_in``); the figure is a
    ``fixed_margin_figure_class()``: in a notebook it is saved as laid out, grown where a
    label is wider than its margin (a log axis up to 100,000,000 ms), never cut."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width_in, height_in), squeeze=False,
                             FigureClass=fixed_margin_figure_class())
    fig.subplots_adjust(left=left_in / width_in, right=1 - right_in / width_in, bottom=bottom_in / height_in,
                        top=1 - top_in / height_in, wspace=wspace)
    return fig, list(axes[0])


def legend_width_in(labels: Sequence[str], fontsize: float = 8) -> float:
    """Width (inches) a one-column legend of ``labels`` needs beside the axes."""
    longest = max((len(s) for s in labels), default=0)
    return 0.55 + longest * fontsize * 0.0085


def legend_outside(ax, title: str | None = None, fontsize: float = 8) -> None:
    """The axes' legend to the right of the data, top-aligned, without a frame."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                  fontsize=fontsize, title=title, title_fontsize=fontsize, alignment="left")


def no_data_figure(title: str, message: str, width_in: float = 10.0):
    """A short figure that says in words that there is nothing to draw (no empty axis)."""
    fig, (ax,) = new_figure(width_in, 1.1, left_in=0.2, right_in=0.2, top_in=0.35, bottom_in=0.1)
    ax.set_axis_off()
    ax.set_title(title, loc="left", fontsize=11)
    ax.text(0.5, 0.45, message, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#555555")
    return ax


def utc_time_axis(ax, label: str = "time (UTC)") -> None:
    """Dates on the x axis in UTC with concise, unambiguous labels."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import NullLocator

    from .timeutil import UTC

    loc = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=UTC, show_offset=True))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(label)


def shade_period(ax, start: datetime, end: datetime, label: str = "report week") -> None:
    """The report period as a light band (in the legend as ``label``)."""
    ax.axvspan(start, end, color="#fff1c1", alpha=0.8, zorder=0, label=label, linewidth=0)


def log_scale_ms(ax) -> None:
    """A log y axis labelled with plain numbers (``10,000`` rather than ``10^4``)."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def markers_for(n_points: int, default: str = "o") -> str | None:
    """A marker for a short series, none for a long one."""
    return default if n_points <= FEW_POINTS else None


PLOT_WIDTH_IN = 12.5  # at 96 dpi: 1200 px, the page's width less margins
EV_LINESTYLES = ("-", "--", "-.", (0, (1, 1)))


def plot_ev_gate(hist: dict[str, dict[str, list[tuple]]], start: datetime, end: datetime, period: str):
    """EV-gate win rate (percent) over time from ``{strategy: {"<symbol> <mode>": [(time,
    lcb, point), ...]}}``: one colour per strategy, one line style per symbol/mode; the
    win-rate LCB bold with markers, the posterior mean thin in the same colour; ``[start,
    end)`` shaded and named ``period`` in the legend."""
    if not hist:
        return no_data_figure("EV gate: win rate over time", "No EV-gate snapshots.")
    labels = [f"{s} · {k}" for s, series in hist.items() for k in series]
    fig, (ax,) = new_figure(PLOT_WIDTH_IN, 4.2, right_in=legend_width_in([*labels, "posterior mean (thin)"]) + 0.2)
    shade_period(ax, start, end, period)
    for i, (strategy, series) in enumerate(hist.items()):
        colour = f"C{i % 10}"
        for j, (key, pts) in enumerate(series.items()):
            t = [x[0] for x in pts]
            style = EV_LINESTYLES[j % len(EV_LINESTYLES)]
            ax.plot(t, [100 * x[1] for x in pts], color=colour, linestyle=style, linewidth=1.6,
                    marker=markers_for(len(pts)) or ".", markersize=5 if len(pts) <= 3 else 3.5,
                    label=f"{strategy} · {key}")
            ax.plot(t, [None if x[2] is None else 100 * x[2] for x in pts], color=colour, linestyle=style,
                    linewidth=0.8, alpha=0.55)
    ax.plot([], [], color="grey", linewidth=0.8, alpha=0.55, label="posterior mean (thin)")
    ax.set_ylabel("win rate (%)")
    ax.set_title("EV gate: win-rate lower confidence bound per strategy (LCB bold, posterior mean thin)", loc="left",
                 fontsize=11)
    utc_time_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax, title="strategy · symbol mode")
    return ax


__all__ = ["Col", "Figure", "fixed_margin_figure_class", "saved_bbox", "STATUS_COLOURS", "Summary", "Table", "cell_text", "change", "fmt_num", "fmt_pct",
           "fmt_time", "legend_outside", "legend_width_in", "log_scale_ms", "markers_for", "new_figure", "no_data_figure",
           "overall_status", "pill", "plain_table", "plot_ev_gate", "severity_counts", "shade_period", "text_width",
           "utc_time_axis"]
