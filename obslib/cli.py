"""The ``obs`` command: one subcommand per job (``obs --help`` lists them).

Thin by design: each subcommand parses flags and calls into obslib. Subcommand modules
are listed in ``obslib.commands.COMMAND_MODULES``; a module that is not present yet is
skipped, so jobs can land independently.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands import COMMAND_MODULES
from .commands._base import add_global_flags


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
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    return int(func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
