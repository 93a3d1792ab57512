"""The ``obs`` command: one subcommand per job (``obs --help`` lists them).

Thin by design: each subcommand parses flags and calls into obslib. Subcommand modules
are listed in ``obslib.commands.COMMAND_MODULES``; a module that is not present yet is
skipped, so jobs can land independently.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import os
import signal
import sys
import threading

from . import __version__
from .commands import COMMAND_MODULES
from .commands._base import add_global_flags
from .errors import Terminated


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="obs",
        description="obslib: latency SLOs, dashboard bundle and weekly report for the research repository.",
    )
    parser.add_argument("--version", action="version", version=f"obs {__version__}")
    parent = argparse.ArgumentParser(add_help=False)
    add_global_flags(parent)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:
                continue
            raise
        mod.register(sub, parent)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns its exit code. Before the subcommand
    runs, the modules it lists in its ``preimport`` default and ``filelock`` (every job's
    run-log record takes a lock) are imported, so a SIGTERM inside the job never finds
    them half-imported."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in (*getattr(args, "preimport", ()), "filelock"):
        importlib.import_module(name)
    gc.freeze()  # imported modules live until exit: out of the cyclic collector's way (full passes walked them)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    return int(func(args))


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM is not caught
    Terminated.requested = True  # kept even if the raise below lands in a finaliser and is lost
    raise Terminated()


def run() -> None:
    """The ``obs`` console script: ``main()``, then exit without tearing down every imported
    module one by one (papermill, nbconvert, scipy, pyarrow: ~0.25 s of a short cron job).
    Output streams are flushed and the ``atexit`` handlers run first, exactly as a normal
    exit would; when a non-daemon thread is still running, the normal exit (which waits for
    it) is used instead. SIGTERM raises ``Terminated`` in the main thread, so a job stopped
    by a scheduler's timeout cleans up and records the stop like Ctrl-C (a second SIGTERM
    kills at once). SIGTERM is held back until the job has its run-log context
    (``commands._base.run_job`` lets it through): a module interrupted half-way while
    importing would break the clean-up, and a stop before that point could not be recorded.
    The few commands that are not jobs (``cron``, ``log tail``, ``latency status``,
    ``webhook verify``) are short and run to completion."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        code = main()
    except SystemExit as exc:  # argparse errors and --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed pipe: nothing more to say
            pass
    atexit._run_exitfuncs()  # what interpreter shutdown would run (logging.shutdown, finalizers)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover - `python -m obslib.cli`, as `obs`
    run()
