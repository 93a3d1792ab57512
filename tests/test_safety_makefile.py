"""Issue #12 follow-up D: every make target that runs obs honours the knobs the Makefile
documents (``WORK_ROOT``, ``DATA_ROOT``, ``AS_OF``, ``WEEK_START``, ``DATASET``).

``make cron`` rendered the crontab for the checkout instead of ``WORK_ROOT`` and refused
``DATA_ROOT`` (exit 2); ``DATASET`` was documented and used by no target; ``make demo`` and
``make clean`` worked on the checkout whatever ``WORK_ROOT`` said.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from conftest import REPO, obs_subprocess_env

OBS_TARGETS = ("weekly", "latency", "rollup", "dashboard", "verify", "nightly", "cron")


def make(*args: str, dry: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(REPO), *(["-n"] if dry else []), *args], capture_output=True,
                          text=True, timeout=120, env=obs_subprocess_env())


def test_make_cron_renders_for_work_root_and_data_root(tmp_path):
    data, work = tmp_path / "data", tmp_path / "w"
    data.mkdir()
    p = make("cron", f"WORK_ROOT={work}", f"DATA_ROOT={data}")
    assert p.returncode == 0, p.stderr
    jobs = [line for line in p.stdout.splitlines() if line and not line.startswith("#") and "obs " in line]
    assert jobs and all(line.split(" && ")[0].endswith(f"cd {work}") for line in jobs), jobs[:2]
    assert f"OBS_DATA_ROOT={data}" in p.stdout.splitlines()
    assert str(REPO) + " &&" not in p.stdout


@pytest.mark.parametrize("target", OBS_TARGETS)
def test_every_obs_target_passes_the_work_and_data_root(target, tmp_path):
    p = make(target, f"WORK_ROOT={tmp_path}/w", f"DATA_ROOT={tmp_path}/d", "AS_OF=2026-11-29T00:00:00Z", dry=True)
    assert p.returncode == 0, p.stderr
    calls = [line for line in p.stdout.splitlines() if "/obs " in line]
    assert calls, p.stdout
    for line in calls:
        assert f'--work-root "{tmp_path}/w"' in line and f'--data-root "{tmp_path}/d"' in line, line
        assert '--now "2026-11-29T00:00:00Z"' in line, line


def test_dataset_week_start_demo_and_clean_use_their_knobs(tmp_path):
    one = make("dashboard", "DATASET=ev_history", dry=True).stdout
    assert '--dataset "ev_history"' in one
    assert "--dataset" not in make("dashboard", dry=True).stdout  # default all: every dataset
    assert '--week-start "2026-11-23"' in make("weekly", "WEEK_START=2026-11-23", dry=True).stdout
    assert f'--out "{tmp_path}"/out/demo_repo' in make("demo", f"WORK_ROOT={tmp_path}", dry=True).stdout
    clean = make("clean", f"WORK_ROOT={tmp_path}", dry=True).stdout
    assert f'w="{tmp_path}"' in clean and '"$w/out/weekly_report"' in clean


def test_every_documented_knob_is_used_by_a_recipe():
    text = (REPO / "Makefile").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    knobs = set(re.findall(r"\b([A-Z][A-Z_]+)=", header))
    assert {"DATA_ROOT", "WORK_ROOT", "AS_OF", "WEEK_START", "DATASET"} <= knobs
    recipes = "\n".join(line for line in text.splitlines() if line.startswith("\t") or line.startswith("OBS_FLAGS")
                        or line.startswith("WR "))
    for k in knobs:
        assert f"$({k})" in recipes, f"{k} is documented in the Makefile header but no target uses it"
