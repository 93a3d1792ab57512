"""``obs demo``: generate the deterministic demo research repository."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..demo import generate_demo
from ._base import flag_time, run_job


def _run(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        as_of = flag_time("--as-of", args.as_of) if args.as_of else now
        out = Path(args.out) if args.out else cfg.demo_root
        generate_demo(out, as_of, args.seed if args.seed is not None else cfg.demo_seed)
        return {"out": str(out), "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ")}

    return run_job(args, "demo", body, record=False)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[parent], help="generate the deterministic demo research repository",
                       description="Write a synthetic research repository (same seed and as-of: byte-identical).")
    p.add_argument("--out", help="output folder (default: out/demo_repo under the work root)")
    p.add_argument("--as-of", help="RFC 3339 time the data is dated relative to (default: now)")
    p.add_argument("--seed", type=int, help="random seed (default: config demo_seed, 7)")
    p.set_defaults(func=_run)
