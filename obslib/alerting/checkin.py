"""Check-in pings for monitors outside the host (the healthchecks.io protocol).

A job with ``OBS_PING_URL_<JOB>`` set (``<JOB>`` = its schedule name in capitals:
``OBS_PING_URL_LATENCY_SAMPLE``, ``OBS_PING_URL_WEEKLY_REPORT``, ...) sends
``POST <url>/start`` when it starts, ``POST <url>`` when it succeeds (exit 0) and
``POST <url>/fail`` when it fails, each with ``?rid=<uuid>`` (one run id per run, a UUID
derived from the job id, so the monitor pairs start and end and measures the duration)
and the job's summary line as the body. A ping is bounded (``PING_DEADLINE_S`` in total)
and never fails the job: a failed ping is only said on stderr, without the URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

PING_DEADLINE_S = 10.0
BODY_MAX_BYTES = 100_000  # healthchecks.io keeps the first 100 kB of a ping body
RUNLOG_TO_SCHEDULE = {"latency": "latency_sample"}  # run-log job_name -> schedule name, where they differ


def ping_key(job_name: str) -> str:
    """The ``OBS_PING_URL_<KEY>`` key of a run-log job name, lower case (``latency`` -> ``latency_sample``)."""
    return RUNLOG_TO_SCHEDULE.get(job_name, job_name).lower()


def run_id(job_id: str) -> str:
    """The ``rid`` of a run: a UUID (healthchecks.io requires one) derived from the job id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"obslib:{job_id}"))


class CheckIn:
    """The pings of one run; a no-op when ``url`` is None."""

    def __init__(self, url: str | None, job_id: str):
        self.url = url.rstrip("/") if url else None
        self.rid = run_id(job_id)
        self.errors: list[str] = []

    @classmethod
    def for_job(cls, pings: Mapping[str, str], job_name: str, job_id: str) -> CheckIn:
        return cls(pings.get(ping_key(job_name)), job_id)

    def _send(self, suffix: str, body: bytes) -> None:
        if not self.url:
            return
        import requests

        from ..http_attempt import post_within

        try:
            with requests.Session() as s:
                res = post_within(s, f"{self.url}{suffix}?rid={self.rid}", body[:BODY_MAX_BYTES],
                                  {"Content-Type": "text/plain; charset=utf-8"}, connect_timeout_s=5.0,
                                  read_timeout_s=5.0, deadline_s=PING_DEADLINE_S)
        except Exception as exc:  # noqa: BLE001 - a ping never fails the job
            self.errors.append(f"{suffix or '/'}: {exc.__class__.__name__}")
            return
        if res.exc is not None or res.code is None or not 200 <= res.code < 300:
            why = f"HTTP {res.code}" if res.code is not None else res.exc.__class__.__name__
            self.errors.append(f"{suffix or 'success'} ping failed ({why})")

    def start(self) -> None:
        self._send("/start", b"")

    def finish(self, ok: bool, summary_line: str) -> None:
        self._send("" if ok else "/fail", summary_line.encode("utf-8"))
