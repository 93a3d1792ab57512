"""Error types shared by every job.

Every error a user can cause (bad input, bad config, failed delivery) is an
``ObsError``: the CLI turns it into a one-line message on stderr, a JSON summary with
``status: "error"`` on stdout and a non-zero exit, never a traceback.
"""

from __future__ import annotations


class ObsError(Exception):
    """Base class for expected, user-facing failures (exit code 2 by default)."""

    exit_code = 2


class ConfigError(ObsError):
    """Invalid configuration: unknown key, wrong type, bad value."""


class InputError(ObsError):
    """A required input is missing or does not parse.

    ``path`` is the file (relative to the data root where possible), ``line`` the
    1-based line number (None for whole-file problems), ``reason`` why it failed.
    """

    def __init__(self, path: str, reason: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class UnreadableInput(InputError):
    """An input file exists (or should) but cannot be read: an I/O problem (permissions,
    a vanished file, a device error), not bad data. Raised by ``storage.read_json``;
    readers that turn a malformed file into a ``Problem`` re-raise this one, so it always
    stops the job (even with ``--allow-bad-rows``)."""


class ValidationError(ObsError):
    """An artefact failed its JSON Schema or a data rule; nothing was published."""


class LockTimeout(ObsError):
    """A lock could not be taken within its bounded wait."""

    exit_code = 0  # cron overlap is not a failure; callers log `skipped`


class DeliveryError(ObsError):
    """A webhook delivery failed after its last attempt."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (a cron/systemd timeout, ``kill``). Raised by the
    ``obs`` console script's signal handler so that the job unwinds like on Ctrl-C: its
    ``finally`` blocks stop the kernel and remove staging folders, and the run log records
    the stop. Exit code 143 (128 + 15)."""

    exit_code = 143

    requested = False  # set by the handler; see ``raise_if_terminated``


def raise_if_terminated() -> None:
    """Raise ``Terminated`` when a SIGTERM has arrived. The handler raises at once, but an
    exception raised while Python runs a finaliser or a weakref callback is printed as
    "Exception ignored" and lost; this check, at the steps where jobs commit
    (``faults.checkpoint``) and after a job's body, makes sure such a stop still stops."""
    if Terminated.requested:
        raise Terminated()
