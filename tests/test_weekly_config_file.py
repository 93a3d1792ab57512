"""The weekly job and its notebook read the same obs.toml: ``--config`` reaches the notebook
as its ``config_file`` parameter, so the published payload and a re-run by hand agree; and a
delivery that cannot happen is still the error reported first, even with no kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import obs_subprocess_env

from obslib.weekly.report import prepare_weekly

REPO = Path(__file__).resolve().parents[1]
NOW = "2026-03-18T09:00:00Z"
WEEK = "2026-03-16"


def obs(work: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obslib", *args, "--work-root", str(work), "--now", NOW],
                          capture_output=True, text=True, cwd=REPO, env=obs_subprocess_env(**env), timeout=300)


def test_config_flag_reaches_the_notebook_and_a_rerun_reads_it_too(tmp_path):
    work = tmp_path / "kit"
    alt = tmp_path / "elsewhere" / "alt.toml"
    alt.parent.mkdir()
    alt.write_text('owner = "alt-owner-team"\n')
    p = obs(work, "weekly", "run", "--config", str(alt))
    assert p.returncode == 0, p.stderr[-2000:]
    wdir = work / "out" / "weekly_report" / WEEK
    payload = json.loads((wdir / "payload.json").read_text())
    assert payload["alerts"] and {a["owner"] for a in payload["alerts"]} == {"alt-owner-team"}
    nb = json.loads((wdir / "weekly_report.ipynb").read_text())
    params = "".join(nb["cells"][0]["source"])
    assert f'config_file: str = "{alt.resolve()}"' in params  # the published notebook re-runs with it

    # a re-run by hand with the published parameters: the same owners; without the file, the default
    root = json.loads((wdir / "source.json").read_text())["data_root"]
    rerun = prepare_weekly(week_start=WEEK, data_root=root, as_of=NOW, out_dir=str(tmp_path / "rerun"),
                           work_root=str(work), config_file=str(alt.resolve()))
    assert {a["owner"] for a in rerun.payload["alerts"]} == {"alt-owner-team"}
    plain = prepare_weekly(week_start=WEEK, data_root=root, as_of=NOW, out_dir=str(tmp_path / "plain"),
                           work_root=str(work))
    assert {a["owner"] for a in plain.payload["alerts"]} == {"obs-oncall"}


def test_a_refused_delivery_is_reported_first_even_without_a_kernel(tmp_path):
    work = tmp_path / "kit"
    work.mkdir()
    (work / "obs.toml").write_text('[notebook]\nkernel_name = "no-such-kernel"\n')
    p = obs(work, "weekly", "run", "--require-delivery")
    assert p.returncode == 3, p.stderr[-2000:]  # DeliveryError, as when the delivery was checked first
    assert "--require-delivery" in p.stderr and "not set" in p.stderr
    assert not (work / "ops" / "weekly_report_heartbeat.json").exists()  # refused: not a failed report
    p = obs(work, "weekly", "run")  # nothing required: the kernel error is the job's error
    assert p.returncode == 2, p.stderr[-2000:]
    assert "no-such-kernel" in p.stderr and "not installed" in p.stderr
    beat = json.loads((work / "ops" / "weekly_report_heartbeat.json").read_text())
    assert beat["status"] == "error"
