"""The report pages in headless Chromium with the network off (``obslib.browser``): no
request leaves the page, the first screen (1400 x 900) shows the banner, the key figures
and the alerts table, nothing scrolls sideways, no code is shown. Skipped (with the
reason) where Chromium is not installed; ``make screenshots`` writes the same pages as
PNGs to out/screenshots/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import obs_subprocess_env

from obslib.browser import find_chromium, render

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(find_chromium() is None,
                                 reason="chromium not installed (apt-get install -y chromium, or set OBS_CHROMIUM)")]
OBS = [sys.executable, "-m", "obslib"]
NOW = "2026-11-26T09:40:00Z"


def _obs(args, cwd):
    proc = subprocess.run([*OBS, *args, "--now", NOW], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=obs_subprocess_env())
    assert proc.returncode == 0, proc.stderr


def _check(page: Path, shot: Path):
    check = render(page, shot)
    assert check.problems() == [], check.problems()
    assert check.external_requests == [] and check.code_cells == 0
    assert check.on_first_screen("banner") and check.on_first_screen("key_figures") and check.on_first_screen("alerts")
    assert shot.stat().st_size > 10_000
    return check


def test_weekly_demo_page(tmp_path):
    _obs(["weekly", "run"], tmp_path)
    check = _check(tmp_path / "out/weekly_report/2026-11-23/weekly_report.html", tmp_path / "weekly.png")
    assert check.title == "Weekly observability report — 2026-11-23 — demo (seed 7)"


def test_weekly_real_week_page(tmp_path, real_root):
    _obs(["weekly", "run", "--data-root", str(real_root), "--week-start", "2025-09-29"], tmp_path)
    _check(tmp_path / "out/weekly_report/2025-09-29/weekly_report.html", tmp_path / "real.png")


def test_dashboard_page(tmp_path):
    _obs(["dashboard", "run"], tmp_path)
    check = _check(tmp_path / "out/dashboard/dashboard_bundle.html", tmp_path / "dashboard.png")
    assert check.title == "Dashboard bundle — 2026-11-26 — demo (seed 7)"


def test_an_external_reference_is_caught_and_never_leaves(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<html><head><title>t</title><script src="https://cdn.example.invalid/require.js"></script>'
                    '</head><body><div id="obs-banner">b</div><div id="obs-key-figures">k</div>'
                    '<table id="obs-alerts"><tr><td>a</td></tr></table>'
                    '<img src="http://example.invalid/x.png"></body></html>')
    check = render(page, tmp_path / "page.png")
    assert sorted(check.external_requests) == ["http://example.invalid/x.png", "https://cdn.example.invalid/require.js"]
    assert check.problems() == ["external request: " + u for u in check.external_requests]
