"""``obs dashboard export|verify|publish|run``: the dashboard bundle (``make dashboard``)."""

from __future__ import annotations

import argparse

from ._base import run_job, say


def _request(cfg, ctx, now, names, pip_value):
    from ..dashboard.bundle import ExportRequest
    from ..inputs import data_label, resolve_data_root
    from ..provenance import commit_sha, source_command

    root = resolve_data_root(cfg, now)
    return ExportRequest(names=names, data_root=root, work_root=cfg.work_root, now=now, job_id=ctx.job_id,
                         command=source_command(), commit_sha=commit_sha(), data_label=data_label(cfg),
                         pip_value=pip_value, retention_days=cfg.history_retention_days,
                         lock_timeout_s=cfg.lock_timeout_s)


def _export_summary(result) -> dict:
    out = result.summary()
    out["_artefacts"] = result.artefacts
    if result.failed:
        for f in result.failed:
            say(f"obs dashboard: {f['dataset']} not published (rule {f['rule']}): {f['error']}")
        out.update(status="error", exit_code=1,
                   error="; ".join(f"{f['dataset']}: rule {f['rule']}" for f in result.failed))
    return out


def _export(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..dashboard.bundle import export_bundle, select

        return _export_summary(export_bundle(_request(cfg, ctx, now, select(args.dataset), args.pip_value)))

    return run_job(args, "dashboard_export", body)


def _findings_summary(findings) -> dict:
    for f in findings[:50]:
        say(f"obs dashboard verify: {f}")
    codes: dict[str, int] = {}
    for f in findings:
        codes[f.code] = codes.get(f.code, 0) + 1
    out = {"findings": len(findings), "codes": codes}
    if findings:
        out.update(status="error", exit_code=1, error=", ".join(f"{k} x{v}" for k, v in sorted(codes.items())))
    return out


def _verify(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..dashboard.verify import verify_all

        return _findings_summary(verify_all(cfg.work_root, now, cfg.history_retention_days, deep=args.deep))

    return run_job(args, "dashboard_verify", body, read_only_ok=True)  # works on a read-only mirror


def _publish(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..dashboard.publish import run_publish

        out = run_publish(cfg, ctx, now, to=args.to)
        for e in out.get("published", []):
            say(f"obs dashboard publish: {e['job_id']} -> {e['uri']}")
        return out

    return run_job(args, "dashboard_publish", body)


def _run(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..dashboard import NOTEBOOK
        from ..notebook import kernel_session

        # the kernel starts first: it boots (and imports what the notebook needs) while this
        # process imports the export code (pandas, pyarrow) and exports
        with kernel_session(cfg.notebook.kernel_name, notebook=NOTEBOOK) as km:
            from ..dashboard.job import run_notebook

            run = run_notebook(cfg, ctx, now, pip_value=args.pip_value, km=km)
        out = _export_summary(run.result)
        out["_artefacts"] = out.get("_artefacts", []) + run.artefacts
        out["notebook"] = run.artefacts
        return out

    return run_job(args, "dashboard_export", body)  # the same job as `export`, plus the notebook


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from ..config import finite_number
    from ..dashboard import (
        DATASETS,  # constants only: keeps `obs` start-up light
        DEFAULT_PIP_VALUE,
    )

    p = sub.add_parser("dashboard", help="dashboard bundle: export, verify, publish, run (notebook)",
                       description="Dashboard datasets (JSON + Parquet) with manifest, README.json, heartbeat "
                                   "and history under out/dashboard/ and ops/.")
    dsub = p.add_subparsers(dest="dashboard_command", metavar="SUBCOMMAND")
    dsub.required = True
    e = dsub.add_parser("export", parents=[parent], help="build, check and publish datasets (no notebook)",
                        description="Build the datasets, validate each against its schema and rules, publish the "
                                    "valid ones, update manifest/README/heartbeat/history. Exit 1 when a dataset "
                                    "failed (its previous version stays).")
    e.add_argument("--dataset", default="all", choices=["all", *DATASETS], help="dataset to export (default all)")
    e.add_argument("--pip-value", type=finite_number(minimum=0, exclusive=True), default=DEFAULT_PIP_VALUE,
                   help="account currency per pip for turnover drawdown_pct (default %(default)s)")
    e.set_defaults(func=_export)
    v = dsub.add_parser("verify", parents=[parent], help="verify the bundle and its history (exit 1 on a finding)",
                        description="Streamed checksums, bytes, Parquet schemas and row counts, JSON envelopes, "
                                    "manifest completeness, sequence order, history objects and retention. "
                                    "Each finding has a code.")
    v.add_argument("--deep", action="store_true",
                   help="also re-parse every JSON dataset and re-run its schema and row rules (slower)")
    v.set_defaults(func=_verify)
    pb = dsub.add_parser("publish", parents=[parent], help="copy a verified bundle to a folder or fsspec URL",
                         description="Queue the current bundle, then for each queued export: verify it, copy it "
                                     "to <to>/<job_id>/, verify the copy, prune copies older than max(retention, "
                                     "60 days) there. A failed upload stays queued for the next run; failures in "
                                     "a row raise an alert. Without --to or [publish] to: nothing to do (exit 0).")
    pb.add_argument("--to", help="target folder or fsspec URL (e.g. file:///mnt/share/dashboard); default "
                                 "[publish] to in obs.toml / $OBS_PUBLISH_TO")
    pb.set_defaults(func=_publish)
    r = dsub.add_parser("run", parents=[parent], help="execute the dashboard notebook (export all datasets)",
                        description="Execute notebooks/dashboard_bundle.ipynb with papermill (it runs the export "
                                    "through obslib); the executed notebook and HTML land in out/dashboard/.")
    r.add_argument("--pip-value", type=finite_number(minimum=0, exclusive=True), default=DEFAULT_PIP_VALUE,
                   help="account currency per pip for turnover drawdown_pct (default %(default)s)")
    r.set_defaults(func=_run, preimport=("jupyter_client.manager",))  # see weekly_cmd
