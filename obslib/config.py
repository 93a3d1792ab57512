"""One typed configuration: defaults < ``obs.toml`` < environment < CLI flags.

Sections mirror ``obs.toml``::

    data_root = "../shared/realdata/research_repo"   # top-level keys: see Config
    [latency]
    slo_ms = 120000
    [[latency.sources]]
    name = "router_demo"
    kind = "event_log"            # event_log | feed_freshness | http_probe
    path = "{data_root}/ops/signal_latency.csv"
    [webhook]
    max_attempts = 5

Environment: ``OBS_<KEY>`` for top-level keys (``OBS_DATA_ROOT``), ``OBS_<SECTION>_<KEY>``
for section keys (``OBS_WEBHOOK_MAX_ATTEMPTS``) and ``LATENCY_SLO_MS`` (DESIGN.md).
Secrets are *not* config: they are read from the environment at the moment of use.
Nothing here reads the clock. Errors: ``ConfigError`` naming the key and source.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

SOURCE_KINDS = ("event_log", "feed_freshness", "http_probe")


@dataclass
class LatencySource:
    """A latency source. ``path`` may contain ``{data_root}``; ``url`` is for http_probe;
    ``match_source`` (event_log only) counts only rows whose ``source`` column equals it;
    ``by_source_column`` (event_log only) makes each value of that column its own source
    (the default source does this); ``slo_ms``/``slo_target`` override ``[latency]``'s for
    this source. ``name`` must be an identifier (``obslib.safepath.check_identifier``)."""

    name: str
    kind: str
    path: str | None = None
    url: str | None = None
    match_source: str | None = None
    timeout_s: float = 5.0
    bar_minutes: float = 5.0
    window_minutes: float = 15.0
    by_source_column: bool = False
    slo_ms: float | None = None
    slo_target: float | None = None

    def __post_init__(self) -> None:
        from .safepath import check_identifier

        check_identifier(self.name, what="latency source name")
        if self.match_source is not None:
            check_identifier(self.match_source, what=f"latency source {self.name!r}: match_source")
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"latency source {self.name!r}: kind {self.kind!r} is not one of {SOURCE_KINDS}")
        if self.kind in ("event_log", "feed_freshness") and not self.path:
            raise ConfigError(f"latency source {self.name!r}: kind {self.kind} needs a path")
        if self.kind == "http_probe" and not self.url:
            raise ConfigError(f"latency source {self.name!r}: kind http_probe needs a url")


@dataclass
class LatencyConfig:
    slo_ms: float = 120000.0
    raw_retention_days: int = 14
    rollup_retention_days: int = 90
    rotate_bytes: int = 10 * 1024 * 1024
    window_minutes: float = 15.0
    # the latency model (docs/architecture.md "Latency model")
    slo_target: float = 0.95           # fraction of events <= slo_ms (0.95: "p95 <= SLO")
    max_future_skew_s: float = 300.0   # events further ahead of now are bad rows
    min_events: int = 1                # fewer events in a window: "insufficient" (no streak step)
    absent_warning_windows: int = 2    # windows without events before an absent-data warning
    absent_critical_windows: int = 4   # ... and critical
    burn_page: float = 14.4            # page when the 1 h and 15 min burn rates both exceed it
    burn_warn: float = 6.0             # warn when the 6 h and 1 h burn rates both exceed it
    naive_timestamps: str = "reject"   # "reject": a timestamp without a zone is a bad row; "utc"
    sources: list[LatencySource] = field(default_factory=list)

    def slo_for(self, source: str) -> tuple[float, float]:
        """(slo_ms, slo_target) for a source: a configured source's overrides, else these."""
        for s in self.sources:
            if s.name == source or (s.by_source_column and s.slo_ms is not None):
                return (s.slo_ms if s.slo_ms is not None else self.slo_ms,
                        s.slo_target if s.slo_target is not None else self.slo_target)
        return self.slo_ms, self.slo_target

    def slo_of(self, source: str) -> float:
        return self.slo_for(source)[0]


@dataclass
class WebhookConfig:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    attempt_deadline_s: float = 30.0  # total per attempt: connect + headers + reply excerpt
    max_attempts: int = 5
    backoff_base_s: float = 60.0
    backoff_max_s: float = 900.0
    retry_after_cap_s: float = 300.0
    signature_tolerance_s: int = 300
    sign_with_real_clock: bool = True  # signatures carry the real time even under --now


@dataclass
class AlertsConfig:
    """``[alerts]``: routing, repeat and acknowledgement (``obslib.alerting``). Secrets and
    destination URLs are never here: they come from the environment."""

    repeat_interval_s: float = 4 * 3600.0  # unresolved, unacknowledged criticals are re-sent this often
    ack_goal_s: float = 600.0  # the operating goal: acknowledged within 10 minutes
    latency_budget_s: float = 60.0  # delivery time a latency run may spend; the rest waits for the next run
    summary_channel: str | None = None  # slack | webhook: a one-line summary of every job run
    runbook_base_url: str | None = None  # makes docs/runbook.md#anchor links absolute in Slack/PagerDuty
    ops_budget_s: float = 120.0  # delivery time the nightly check may spend on its alerts
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_to: str | None = None  # comma-separated addresses
    smtp_user: str | None = None  # password: $OBS_SMTP_PASSWORD
    smtp_starttls: bool = False
    smtp_timeout_s: float = 20.0


@dataclass
class NotebookConfig:
    kernel_name: str = "obslib"
    start_timeout_s: int = 120
    cell_timeout_s: int = 600


@dataclass
class PublishConfig:
    """``[publish]``: where ``obs dashboard publish`` (scheduled weekly) copies the bundle.
    ``to``: a folder or an fsspec URL (empty: not configured, the job does nothing);
    ``retention_days``: copies kept there, never fewer than 60 days; ``alert_after_failures``:
    consecutive failed runs that raise the ``dashboard-publish-failed`` alert."""

    to: str = ""
    retention_days: int = 60
    alert_after_failures: int = 2


@dataclass
class RetentionConfig:
    """How long files that grow with every run are kept (``obslib.retention``)."""

    dry_run_days: float = 28.0
    failed_notebook_days: float = 28.0
    alert_file_days: float = 28.0
    escalation_days: float = 90.0
    runlog_archive_days: float = 90.0
    temp_hours: float = 1.0


@dataclass
class Config:
    """The kit's configuration. Paths are resolved against ``work_root``.

    ``data_root`` None means the embedded demo repository (generated by ``obslib.demo``
    under ``<work_root>/out/demo_repo``).
    """

    work_root: Path = Path(".")
    data_root: Path | None = None
    run_stamp_tz: str = "UTC"
    benchmark_stale_days: int = 14
    utilisation_warning_headroom_frac: float = 0.2
    lock_timeout_s: float = 30.0
    demo_seed: int = 7
    owner: str = "obs-oncall"
    runbook: str = "docs/runbook.md"
    history_retention_days: int = 56
    runlog_rotate_bytes: int = 10 * 1024 * 1024
    # [schedule.<job>] overrides (cron, grace_s, ...): validated by obslib.schedule.load_schedule
    schedule: dict[str, Any] = field(default_factory=dict)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    notebook: NotebookConfig = field(default_factory=NotebookConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # the obs.toml this config was read from (None: no file); jobs pass it on to their notebooks
    config_file: Path | None = None

    @property
    def out_dir(self) -> Path:
        return Path(self.work_root) / "out"

    @property
    def ops_dir(self) -> Path:
        return Path(self.work_root) / "ops"

    @property
    def demo_root(self) -> Path:
        return self.out_dir / "demo_repo"

    @property
    def uses_demo(self) -> bool:
        return self.data_root is None

    def latency_sources(self, data_root: Path) -> list[LatencySource]:
        """Configured sources, or the default: the research repo's (or the demo's) event
        log ``ops/signal_latency.csv``, one source per value of its ``source`` column
        (rows without one count for ``signal_events``), so the sampler and the weekly
        payload name a feed the same way. A ``feed_freshness`` source on ``data/sample_orb.csv`` is not a
        default: a 5-minute bar feed is always older than the 120 s SLO, and the real
        file is historical; declare one in obs.toml with its own expectations.
        ``{data_root}`` in a path is substituted."""
        log = "{data_root}/ops/signal_latency.csv"
        if self.latency.sources:
            srcs = self.latency.sources
        else:
            srcs = [LatencySource(name="signal_events", kind="event_log", path=log, by_source_column=True)]
        out = []
        for s in srcs:
            path = s.path.replace("{data_root}", str(data_root)) if s.path else None
            out.append(dataclasses.replace(s, path=path))
        return out


def finite_number(*, minimum: float | None = None, exclusive: bool = False, integer: bool = False):
    """An ``argparse`` ``type=`` for numeric flags: the value must parse, be finite (no
    ``nan``/``inf``) and be ``> minimum`` (``exclusive``) or ``>= minimum``. Anything else
    is an argparse error (``argument --x: ...``, exit 2) before the job starts."""
    import argparse
    import math

    def parse(raw: str) -> float | int:
        try:
            value: float | int = int(raw) if integer else float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not {'an integer' if integer else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a finite number")
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            raise argparse.ArgumentTypeError(f"{raw!r} must be {'>' if exclusive else '>='} {minimum:g}")
        return value

    parse.__name__ = "integer" if integer else "number"
    return parse


def check_finite(value: object, *, what: str, minimum: float | None = None, exclusive: bool = False) -> float:
    """``float(value)`` when it is a finite number in range, else ``ConfigError`` naming
    ``what`` (for values that arrive as notebook parameters or library arguments)."""
    import math

    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {str(value)[:40]!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(f):
        raise ConfigError(f"{what}: {str(value)[:40]!r} is not a finite number")
    if minimum is not None and (f <= minimum if exclusive else f < minimum):
        raise ConfigError(f"{what} must be {'>' if exclusive else '>='} {minimum:g}, got {f:g}")
    return f


_SECTIONS = {"latency": LatencyConfig, "webhook": WebhookConfig, "notebook": NotebookConfig, "publish": PublishConfig,
             "retention": RetentionConfig, "alerts": AlertsConfig}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if typ is Path:
            return Path(str(value))
        if typ is str:
            if not isinstance(value, (str, int, float)):
                raise ValueError(value)
            return str(value)
    except (TypeError, ValueError) as exc:
        name = getattr(typ, "__name__", str(typ))
        raise ConfigError(f"{where}: {value!r} is not a valid {name}") from exc
    return value


def _apply(obj: Any, values: dict[str, Any], source: str, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, val in values.items():
        where = f"{source}: {prefix}{key}"
        if key not in names:
            raise ConfigError(f"{where}: unknown setting (known: {', '.join(sorted(names))})")
        if key in _SECTIONS and not prefix:
            if not isinstance(val, dict):
                raise ConfigError(f"{where}: expected a table")
            _apply(getattr(obj, key), val, source, prefix=f"{key}.")
            continue
        if prefix == "latency." and key == "sources":
            if not isinstance(val, list):
                raise ConfigError(f"{where}: expected an array of tables [[latency.sources]]")
            srcs = []
            for i, s in enumerate(val):
                if not isinstance(s, dict) or "name" not in s or "kind" not in s:
                    raise ConfigError(f"{where}[{i}]: each source needs a name and a kind")
                known = {f.name for f in dataclasses.fields(LatencySource)}
                bad = set(s) - known
                if bad:
                    raise ConfigError(f"{where}[{i}]: unknown keys {sorted(bad)}")
                shints = typing.get_type_hints(LatencySource)
                srcs.append(LatencySource(**{k: _coerce(v, shints[k], f"{where}[{i}].{k}") for k, v in s.items()}))
            names_seen = [s.name for s in srcs]
            if len(set(names_seen)) != len(names_seen):
                raise ConfigError(f"{where}: duplicate source names {names_seen}")
            obj.sources = srcs
            continue
        setattr(obj, key, _coerce(val, hints[key], where))


def _env_values(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cfg = Config()
    for f in dataclasses.fields(cfg):
        if f.name in _SECTIONS:
            sec: dict[str, Any] = {}
            for sf in dataclasses.fields(_SECTIONS[f.name]):
                if sf.name == "sources":
                    continue
                k = f"OBS_{f.name.upper()}_{sf.name.upper()}"
                if k in env:
                    sec[sf.name] = env[k]
            if sec:
                out[f.name] = sec
        elif f.name != "work_root":
            k = f"OBS_{f.name.upper()}"
            if k in env and env[k] != "":
                out[f.name] = env[k]
    if env.get("LATENCY_SLO_MS"):
        out.setdefault("latency", {})["slo_ms"] = env["LATENCY_SLO_MS"]
    return out


def load_config(work_root: str | os.PathLike | None = None, *, config_file: str | os.PathLike | None = None,
                env: dict[str, str] | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Build the config: defaults < obs.toml < environment < ``overrides`` (CLI flags).

    ``work_root`` (default ``$OBS_WORK_ROOT`` or ``.``) holds ``out/`` and ``ops/``.
    ``config_file`` (default ``$OBS_CONFIG`` or ``<work_root>/obs.toml``) is optional
    unless named explicitly. ``overrides`` uses the toml shape; None values are ignored.
    Relative ``data_root`` in obs.toml is resolved against the file's folder.
    Raises ``ConfigError`` for unknown keys, wrong types, unreadable/invalid toml.
    """
    env = dict(os.environ if env is None else env)
    root = Path(work_root or env.get("OBS_WORK_ROOT") or ".")
    cfg = Config(work_root=root)
    explicit = config_file or env.get("OBS_CONFIG")
    toml_path = Path(explicit) if explicit else root / "obs.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{toml_path}: invalid TOML: {exc}") from exc
        data.pop("work_root", None)
        _apply(cfg, data, str(toml_path))
        cfg.config_file = toml_path.resolve()
        if cfg.data_root is not None and not cfg.data_root.is_absolute():
            cfg.data_root = (toml_path.parent / cfg.data_root)
    elif explicit:
        raise ConfigError(f"{toml_path}: config file not found")
    _apply(cfg, _env_values(env), "environment")
    if overrides:
        clean: dict[str, Any] = {}
        for k, v in overrides.items():
            if isinstance(v, dict):
                sub = {sk: sv for sk, sv in v.items() if sv is not None}
                if sub:
                    clean[k] = sub
            elif v is not None:
                clean[k] = v
        _apply(cfg, clean, "command line")
    _check_ranges(cfg)
    _check_paths_utf8(cfg)
    return cfg


def _check_paths_utf8(cfg: Config) -> None:
    """``ConfigError`` for a work root, data root or config file whose path is not valid
    UTF-8 (undecodable bytes from the command line): every artefact records these paths as
    UTF-8 JSON, so such a path would fail half-way through a job instead of up front."""
    for what, path in (("work root", cfg.work_root), ("data root", cfg.data_root), ("config file", cfg.config_file)):
        if path is None:
            continue
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # the bytes as typed: \\xff
            raise ConfigError(f"{what} {shown}: the path is not valid UTF-8; use a path of UTF-8 names") from None


_POSITIVE = ("latency.slo_ms", "latency.burn_page", "latency.burn_warn", "latency.window_minutes", "webhook.connect_timeout_s", "webhook.read_timeout_s",
             "webhook.attempt_deadline_s",
             "notebook.start_timeout_s", "notebook.cell_timeout_s", "latency.rotate_bytes",
             "runlog_rotate_bytes", "latency.raw_retention_days", "latency.rollup_retention_days",
             "history_retention_days", "benchmark_stale_days", "webhook.signature_tolerance_s",
             "retention.dry_run_days", "retention.failed_notebook_days", "retention.alert_file_days",
             "retention.escalation_days", "retention.runlog_archive_days", "retention.temp_hours",
             "alerts.repeat_interval_s", "alerts.ack_goal_s", "alerts.latency_budget_s", "alerts.smtp_port", "alerts.ops_budget_s",
             "alerts.smtp_timeout_s")
_NON_NEGATIVE = ("lock_timeout_s", "webhook.backoff_base_s", "webhook.backoff_max_s", "webhook.retry_after_cap_s",
                 "utilisation_warning_headroom_frac")


def _check_ranges(cfg: Config) -> None:
    """Every number finite and in range; ``ConfigError`` naming the key otherwise."""
    import math

    def get(key: str):
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    for key in _POSITIVE + _NON_NEGATIVE:
        v = float(get(key))
        if not math.isfinite(v) or v < 0 or (key in _POSITIVE and v == 0):
            need = "> 0" if key in _POSITIVE else ">= 0"
            raise ConfigError(f"{key} must be a finite number {need}, got {get(key)!r}")
    if cfg.utilisation_warning_headroom_frac >= 1:
        raise ConfigError("utilisation_warning_headroom_frac must be a fraction in [0, 1), "
                          f"got {cfg.utilisation_warning_headroom_frac!r}")
    port = cfg.alerts.smtp_port
    if isinstance(port, bool) or float(port) != int(port) or not 1 <= int(port) <= 65535:
        raise ConfigError(f"alerts.smtp_port must be a TCP port, an integer 1..65535, got {port!r}")
    if cfg.alerts.summary_channel not in (None, "slack", "webhook"):
        raise ConfigError(f"alerts.summary_channel {cfg.alerts.summary_channel!r} is not slack or webhook")
    if cfg.webhook.max_attempts < 1:
        raise ConfigError(f"webhook.max_attempts must be >= 1, got {cfg.webhook.max_attempts}")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.run_stamp_tz)
    except (ValueError, KeyError, OSError) as exc:
        raise ConfigError(f"run_stamp_tz {cfg.run_stamp_tz!r} is not an IANA time zone (e.g. UTC, Asia/Tokyo)") from exc
    lat = cfg.latency
    if not 0 < lat.slo_target < 1:
        raise ConfigError(f"latency.slo_target must be in (0, 1), got {lat.slo_target!r}")
    if not math.isfinite(lat.max_future_skew_s) or lat.max_future_skew_s < 0:
        raise ConfigError(f"latency.max_future_skew_s must be a finite number >= 0, got {lat.max_future_skew_s!r}")
    if lat.min_events < 1 or lat.absent_warning_windows < 1 or lat.absent_critical_windows < lat.absent_warning_windows:
        raise ConfigError("latency.min_events and latency.absent_warning_windows must be >= 1 and "
                          "latency.absent_critical_windows >= latency.absent_warning_windows")
    if lat.naive_timestamps not in ("reject", "utc"):
        raise ConfigError(f"latency.naive_timestamps must be \"reject\" or \"utc\", got {lat.naive_timestamps!r}")
    for w in [lat.window_minutes] + [s.window_minutes for s in lat.sources]:
        if float(w) * 60 != int(float(w) * 60) or 3600 % int(float(w) * 60):
            raise ConfigError(f"latency window_minutes {w!r} must divide an hour into whole seconds (e.g. 5, 15, 60)")
    for s in cfg.latency.sources:
        if s.slo_ms is not None and not (math.isfinite(s.slo_ms) and s.slo_ms > 0):
            raise ConfigError(f"latency source {s.name!r}: slo_ms must be a finite number > 0, got {s.slo_ms!r}")
        if s.slo_target is not None and not 0 < s.slo_target < 1:
            raise ConfigError(f"latency source {s.name!r}: slo_target must be in (0, 1), got {s.slo_target!r}")
        for key in ("timeout_s", "bar_minutes", "window_minutes"):
            v = float(getattr(s, key))
            if not math.isfinite(v) or v <= 0:
                raise ConfigError(f"latency source {s.name!r}: {key} must be a finite number > 0, got {v!r}")
