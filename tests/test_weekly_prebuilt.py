"""One payload build per run (``obslib.weekly.prebuilt``): the job builds the payloads and
hands them to the notebook; the notebook takes them over only for exactly its parameters."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from obslib.config import load_config
from obslib.demo import generate_demo
from obslib.timeutil import parse_ts, parse_week_start
from obslib.weekly.payload import build_weekly_payload
from obslib.weekly.prebuilt import PREBUILT_FILE, build_payloads, hand_over, take_over
from obslib.weekly.report import prepare_weekly

AS_OF = "2026-03-18T09:00:00Z"
WEEK = "2026-03-16"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("prebuilt") / "demo", parse_ts(AS_OF), seed=11)


def params_for(demo: Path, work: Path, out: Path, **over) -> dict:
    p = {"week_start": WEEK, "data_root": str(demo), "as_of": AS_OF, "out_dir": str(out), "work_root": str(work),
         "job_id": "weekly_report-test-1", "source_command": "obs weekly run", "commit_sha": "", "data_label": "demo",
         "allow_bad_rows": False, "config_file": ""}
    p.update(over)
    return p


def test_build_payloads_is_the_library_build_for_the_notebook_parameters(demo, tmp_path):
    params = params_for(demo, tmp_path / "work", tmp_path / "out")
    cfg = load_config(tmp_path / "work", overrides={"data_root": str(demo)})
    built = build_payloads(cfg, params)
    common = dict(cfg=cfg, now=parse_ts(AS_OF), command="obs weekly run", sha=None, data_label="demo")
    assert built.payload == build_weekly_payload(demo, parse_week_start(WEEK), job_id="weekly_report-test-1", **common)
    assert built.previous == build_weekly_payload(demo, parse_week_start("2026-03-09"), job_id="previous-week",
                                                  **common)
    assert built.payload["week_start"].startswith(WEEK) and built.root == demo


def test_the_notebook_takes_over_the_jobs_build_only_for_its_exact_parameters(demo, tmp_path):
    work, out = tmp_path / "work", tmp_path / "staging"
    out.mkdir()
    params = params_for(demo, work, out)
    built = build_payloads(load_config(work, overrides={"data_root": str(demo)}), params)
    marked = copy.deepcopy(built)
    marked.payload["provenance"]["source_command"] = "handed over"  # tells the two paths apart
    hand_over(out, params, marked)

    rep = prepare_weekly(**params)
    assert rep.payload["provenance"]["source_command"] == "handed over"
    assert json.loads((out / "payload.json").read_text())["provenance"]["source_command"] == "handed over"
    assert rep.previous == built.previous

    # any other parameter value: the notebook builds its own
    for change in ({"job_id": "weekly_report-test-2"}, {"as_of": "2026-03-18T09:00:01Z"},
                   {"allow_bad_rows": True}, {"data_label": "other"}):
        other_out = tmp_path / f"o-{len(change)}-{next(iter(change))}"
        other_out.mkdir()
        (other_out / PREBUILT_FILE).write_bytes((out / PREBUILT_FILE).read_bytes())
        rep = prepare_weekly(**{**params, **change, "out_dir": str(other_out)})
        assert rep.payload["provenance"]["source_command"] == "obs weekly run", change


def test_take_over_refuses_what_it_cannot_trust(demo, tmp_path):
    out = tmp_path / "staging"
    out.mkdir()
    params = params_for(demo, tmp_path / "work", out)
    built = build_payloads(load_config(tmp_path / "work", overrides={"data_root": str(demo)}), params)
    assert take_over(out, params) is None  # nothing handed over
    hand_over(out, params, built)
    assert take_over(out, params).payload == built.payload
    assert take_over(out, {**params, "out_dir": "/elsewhere"}).payload == built.payload  # out_dir is not part of it
    assert take_over(out, {**params, "job_id": ""}) is None  # a blank job id is a by-hand run: always build
    assert take_over(None, params) is None
    assert take_over(out, {**params, "data_root": ""}) is None  # a blank data root is a by-hand run too
    good = json.loads((out / PREBUILT_FILE).read_text())

    def forged(**change) -> Path:
        rec = copy.deepcopy(good)
        for dotted, value in change.items():
            *path, last = dotted.split("__")
            node = rec
            for k in path:
                node = node[k]
            node[last] = value
        (out / PREBUILT_FILE).write_text(json.dumps(rec))
        return out

    # content that does not fit the parameters is never used, whatever its params say
    assert take_over(forged(payload__week_start="2031-01-06T00:00:00Z"), params) is None  # another week
    assert take_over(forged(payload__provenance__job_id="someone-else"), params) is None
    assert take_over(forged(payload__generated_at="2026-03-18T09:00:01Z"), params) is None
    assert take_over(forged(payload__alerts="none"), params) is None  # fails the payload schema
    assert take_over(forged(payload__unexpected_field=1), params) is None  # the schema forbids extra fields
    assert take_over(forged(previous__week_start="2026-03-02T00:00:00Z"), params) is None  # not the week before
    assert take_over(forged(root="/etc"), params).root == demo  # the data root is the parameter's, never the file's
    (out / PREBUILT_FILE).write_text('{"params": ')  # torn
    assert take_over(out, params) is None
    (out / PREBUILT_FILE).write_text(json.dumps({"params": {k: v for k, v in params.items() if k != "out_dir"},
                                                 "payload": ["not", "an", "object"]}))
    assert take_over(out, params) is None
