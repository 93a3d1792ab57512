"""Where alerts and reports go: read from the environment once, at the CLI edge, and checked.

Environment (never written anywhere; ``runlog.redact`` hides each value and its URL tokens):

=============================  ==========================================================
``OBS_WEEKLY_WEBHOOK_URL``     the weekly payload's signed webhook
``OBS_ALERT_WEBHOOK_URL``      alert documents' signed webhook (falls back to the weekly URL)
``OBS_ESCALATION_WEBHOOK_URL`` a weekly delivery that exhausted its attempts
``OBS_WEBHOOK_SECRET``         whitespace-separated signing secrets (``signing.check_secret``)
``OBS_SLACK_WEBHOOK_URL``      Slack incoming webhook
``OBS_PAGERDUTY_ROUTING_KEY``  PagerDuty Events API v2 integration (routing) key
``OBS_PAGERDUTY_EVENTS_URL``   Events API endpoint (default ``PAGERDUTY_EVENTS_URL``)
``OBS_SMTP_PASSWORD``          SMTP password (host, port, from, to: ``[alerts]`` in obs.toml)
``OBS_PING_URL_<JOB>``         healthchecks.io-style check-in URL of a job (``OBS_PING_URL_WEEKLY_REPORT``)
=============================  ==========================================================

``Destinations.from_env`` parses and checks them all (``ConfigError`` naming the variable,
never the value), so a job refuses before any work when a destination is unusable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..signing import MIN_SECRET_BYTES, SECRET_ENV, secrets_from_env

ENV_WEEKLY_URL = "OBS_WEEKLY_WEBHOOK_URL"
ENV_ALERT_URL = "OBS_ALERT_WEBHOOK_URL"
ENV_ESCALATION_URL = "OBS_ESCALATION_WEBHOOK_URL"
ENV_SLACK_URL = "OBS_SLACK_WEBHOOK_URL"
ENV_PD_KEY = "OBS_PAGERDUTY_ROUTING_KEY"
ENV_PD_URL = "OBS_PAGERDUTY_EVENTS_URL"
ENV_SMTP_PASSWORD = "OBS_SMTP_PASSWORD"
PING_PREFIX = "OBS_PING_URL_"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DESTINATION_ENV = (ENV_WEEKLY_URL, ENV_ALERT_URL, ENV_ESCALATION_URL, ENV_SLACK_URL, ENV_PD_KEY)


def check_url(value: str, var: str) -> str:
    """``value`` stripped when it is an absolute http(s) URL; ``ConfigError`` naming ``var`` otherwise."""
    v = (value or "").strip()
    try:
        parts = urlsplit(v)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in v):
        raise ConfigError(f"{var}: not an absolute http(s) URL")
    return v


def _url(env: Mapping[str, str], var: str) -> str | None:
    raw = (env.get(var) or "").strip()
    return check_url(raw, var) if raw else None


@dataclass(frozen=True)
class Destinations:
    """Every configured destination (values are secret: ``repr`` names only what is set)."""

    weekly_url: str | None = None
    alert_url: str | None = None  # OBS_ALERT_WEBHOOK_URL, else the weekly URL
    escalation_url: str | None = None
    secrets: tuple[str, ...] = ()
    slack_url: str | None = None
    pagerduty_key: str | None = None
    pagerduty_url: str = PAGERDUTY_EVENTS_URL
    smtp_password: str | None = None
    email_to: tuple[str, ...] = ()
    pings: dict[str, str] = field(default_factory=dict)  # job name (lower case) -> check-in URL

    def __repr__(self) -> str:
        return f"Destinations({', '.join(self.configured()) or 'none'})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], cfg: Any = None) -> Destinations:
        """Parse and check the environment (see the module docstring). Raises ``ConfigError``."""
        weekly = _url(env, ENV_WEEKLY_URL)
        key = (env.get(ENV_PD_KEY) or "").strip() or None
        if key is not None and (len(key) < MIN_SECRET_BYTES or any(c.isspace() for c in key)):
            raise ConfigError(f"{ENV_PD_KEY}: a routing key is at least {MIN_SECRET_BYTES} characters, no spaces")
        pw = env.get(ENV_SMTP_PASSWORD) or None
        if pw is not None and len(pw.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ConfigError(f"{ENV_SMTP_PASSWORD}: a password must be at least {MIN_SECRET_BYTES} bytes")
        pings = {k[len(PING_PREFIX):].lower(): check_url(v, k) for k, v in env.items()
                 if k.startswith(PING_PREFIX) and (v or "").strip()}
        al = getattr(cfg, "alerts", None)
        to = tuple(a.strip() for a in (getattr(al, "smtp_to", None) or "").split(",") if a.strip())
        if to and not getattr(al, "smtp_host", None):
            raise ConfigError("alerts.smtp_to is set but alerts.smtp_host is not")
        return cls(weekly_url=weekly, alert_url=_url(env, ENV_ALERT_URL) or weekly,
                   escalation_url=_url(env, ENV_ESCALATION_URL), secrets=tuple(secrets_from_env(env, SECRET_ENV)),
                   slack_url=_url(env, ENV_SLACK_URL), pagerduty_key=key,
                   pagerduty_url=_url(env, ENV_PD_URL) or PAGERDUTY_EVENTS_URL, smtp_password=pw,
                   email_to=to, pings=pings)

    def channels(self) -> set[str]:
        """The alert channels that can send: ``webhook``, ``slack``, ``pagerduty``, ``email``."""
        out = set()
        if self.alert_url and self.secrets:
            out.add("webhook")
        if self.slack_url:
            out.add("slack")
        if self.pagerduty_key:
            out.add("pagerduty")
        if self.email_to:
            out.add("email")
        return out

    def configured(self) -> list[str]:
        """Names (never values) of the destinations set: environment variables and ``alerts.smtp_to``."""
        names = [n for n, v in ((ENV_WEEKLY_URL, self.weekly_url), (ENV_ALERT_URL, self.alert_url != self.weekly_url
                                                                    and self.alert_url),
                                (ENV_ESCALATION_URL, self.escalation_url), (ENV_SLACK_URL, self.slack_url),
                                (ENV_PD_KEY, self.pagerduty_key)) if v]
        if self.email_to:
            names.append("alerts.smtp_to")
        return names


def is_demo_data(cfg: Any) -> bool:
    """The run reads the generated demo repository: no data root configured, or one that
    is the demo folder itself."""
    if cfg.data_root is None:
        return True
    try:
        return Path(cfg.data_root).resolve() == Path(cfg.demo_root).resolve()
    except OSError:
        return False


def production_guard(cfg: Any, dest: Destinations, *, demo_ok: bool) -> None:
    """Refuse (``ConfigError``, exit 2) to run on demo data while a real destination is
    configured, unless ``demo_ok`` (``--demo``): demo alerts must never reach on-call."""
    if demo_ok or not is_demo_data(cfg):
        return
    names = dest.configured()
    if names:
        raise ConfigError(f"refusing to run on the generated demo data while {', '.join(names)} "
                          f"{'is' if len(names) == 1 else 'are'} set: demo alerts and reports would reach a real "
                          "receiver. Set the research repository (--data-root, OBS_DATA_ROOT or data_root in "
                          "obs.toml), or pass --demo to send demo data on purpose")


DEMO_LABEL_PREFIX = "demo (seed "


def stored_payload_guard(payload: Any, *, demo_ok: bool, where: str) -> None:
    """Refuse (``ConfigError``, exit 2) to send a stored payload built from the generated
    demo data (its ``provenance.data_root`` is ``demo (seed N)``, as ``inputs.data_label``
    names it) unless ``demo_ok`` (``--demo``): what is re-sent is what was built, whatever
    ``--data-root`` says now. ``where`` names the stored file in the message."""
    prov = payload.get("provenance") if isinstance(payload, dict) else None
    label = str((prov or {}).get("data_root") or "")
    if label.startswith(DEMO_LABEL_PREFIX) and not demo_ok:
        raise ConfigError(f"refusing to send {where}: it was built from the generated demo data ({label}), "
                          "so demo figures would reach a real receiver. Pass --demo to send it on purpose")
