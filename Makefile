# obslib: make targets for humans and cron. `make help` lists them.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
OBS := $(BIN)/obs
STAMP := $(VENV)/.installed-stamp
# Optional knobs (every target that runs obs passes them; unset means obs's own default):
#   DATA_ROOT=...  WORK_ROOT=... (else $OBS_WORK_ROOT or .)  AS_OF=RFC3339 (--now)
#   WEEK_START=YYYY-MM-DD (weekly)  DATASET=name (dashboard: one of all, ev_history,
#   slippage_telemetry, turnover_summary, latency_rollups; default all)
DATA_ROOT ?=
WEEK_START ?=
AS_OF ?=
DATASET ?= all
WORK_ROOT ?=
OBS_FLAGS := $(if $(DATA_ROOT),--data-root "$(DATA_ROOT)") $(if $(AS_OF),--now "$(AS_OF)") $(if $(WORK_ROOT),--work-root "$(WORK_ROOT)")
# the work root as a shell word, for targets that name files under it (demo, clean, nightly)
WR := "$(or $(WORK_ROOT),$${OBS_WORK_ROOT:-.})"

.DEFAULT_GOAL := help
.PHONY: help install weekly latency rollup dashboard verify nightly cron test test-fast test-nb lint tox bench demo clean \
	screenshots golden

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

KERNEL_JSON := $(VENV)/share/jupyter/kernels/obslib/kernel.json

install: $(STAMP) $(KERNEL_JSON) ## create .venv, install obslib[test] editable, register the 'obslib' Jupyter kernel (idempotent)
	@grep -qs '"obslib.kernel"' $(KERNEL_JSON) || $(BIN)/python -m obslib.kernelspec >/dev/null

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

# the kernelspec is rewritten whenever obslib.kernelspec changes, or (install, above) when it does not run
# obslib.kernel (say a kernel.json registered by hand or restored from an older venv)
$(KERNEL_JSON): obslib/kernelspec.py $(STAMP)
	@$(BIN)/python -m obslib.kernelspec >/dev/null

weekly: install ## weekly report on the default (demo) data; DATA_ROOT=... WEEK_START=... for others
	@$(OBS) weekly run $(OBS_FLAGS) $(if $(WEEK_START),--week-start "$(WEEK_START)") $(if $(OBS_WEEKLY_WEBHOOK_URL),--require-delivery)

latency: install ## sample every latency source once (cron: every 15 min), then roll up
	@$(OBS) latency sample $(OBS_FLAGS)
	@$(OBS) latency rollup $(OBS_FLAGS)

rollup: install ## recompute hourly latency rollups (cron: hourly)
	@$(OBS) latency rollup $(OBS_FLAGS)

dashboard: install ## export the datasets (DATASET=name for one; verified before the switch), then run the notebook
	@$(OBS) dashboard run $(OBS_FLAGS) $(if $(filter-out all,$(DATASET)),--dataset "$(DATASET)")

verify: install ## verify the dashboard bundle and its history
	@$(OBS) dashboard verify $(OBS_FLAGS)

nightly: install ## nightly check (missed runs, stale heartbeats) plus bundle verification (once a bundle exists)
	@$(OBS) check $(OBS_FLAGS); rc=$$?; w=$(WR); \
	if [ -e "$$w/out/dashboard/manifest.json" ] || [ -d "$$w/ops/dashboard_export_history" ]; then \
	  $(OBS) dashboard verify $(OBS_FLAGS) || rc=1; \
	else echo "obs dashboard verify: no dashboard bundle exported yet: nothing to verify" >&2; fi; exit $$rc

cron: install ## print the crontab for DATA_ROOT (or obs.toml data_root; a crontab on the demo data is refused)
	@$(OBS) cron --format crontab $(OBS_FLAGS)

demo: install ## (re)generate the demo research repository under <work root>/out/demo_repo
	@$(OBS) demo --out $(WR)/out/demo_repo $(if $(AS_OF),--as-of "$(AS_OF)")

test: install ## the whole test suite: pytest (unit, real data, integration), strict nbval on the golden notebooks, lax nbval on notebooks/
	$(BIN)/python -m pytest -q tests
	$(BIN)/python -m pytest -q --nbval -p no:cacheprovider --nbval-sanitize-with tests/golden/sanitize.cfg tests/golden/
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks/

golden: install ## re-execute the notebooks on the demo at a fixed time into tests/golden/ (review the diff, then commit)
	$(BIN)/python tests/golden/build_golden.py

test-fast: install ## unit tests only (skips slow crash/concurrency trials)
	$(BIN)/python -m pytest -q -m "not slow" tests

lint: install ## ruff
	$(BIN)/ruff check obslib tests bench

tox: install ## the tests in isolated envs (tox from .venv); TOXENV=py311|nbval|lint for one
	$(BIN)/tox $(if $(TOXENV),-e $(TOXENV))

SHOTS := out/screenshots
REALDATA ?= $(or $(OBSLIB_REALDATA),$(abspath ../shared/realdata/research_repo))
screenshots: install ## headless Chromium, network off: PNGs of the demo week, the real week 2025-09-29 and the dashboard in out/screenshots/
	@rm -rf $(SHOTS) && mkdir -p $(SHOTS)/work
	@$(OBS) weekly run --work-root $(SHOTS)/work/demo $(if $(AS_OF),--now "$(AS_OF)") >/dev/null
	@$(OBS) latency sample --work-root $(SHOTS)/work/dashboard $(if $(AS_OF),--now "$(AS_OF)") >/dev/null
	@$(OBS) latency rollup --work-root $(SHOTS)/work/dashboard $(if $(AS_OF),--now "$(AS_OF)") >/dev/null
	@$(OBS) dashboard run --work-root $(SHOTS)/work/dashboard $(if $(AS_OF),--now "$(AS_OF)") >/dev/null
	@pages="weekly_demo=$$(ls $(SHOTS)/work/demo/out/weekly_report/*/weekly_report.html | head -n 1) \
	        dashboard_demo=$(SHOTS)/work/dashboard/out/dashboard/dashboard_bundle.html"; \
	if [ -d "$(REALDATA)" ]; then \
	  $(OBS) weekly run --work-root $(SHOTS)/work/real --data-root "$(REALDATA)" --week-start 2025-09-29 >/dev/null && \
	  $(OBS) dashboard run --work-root $(SHOTS)/work/real_dashboard --data-root "$(REALDATA)" >/dev/null && \
	  pages="$$pages weekly_real_2025-09-29=$(SHOTS)/work/real/out/weekly_report/2025-09-29/weekly_report.html \
	         dashboard_real=$(SHOTS)/work/real_dashboard/out/dashboard/dashboard_bundle.html"; \
	else echo "real data not found at $(REALDATA): real-data pages skipped"; fi; \
	$(BIN)/python -m obslib.browser --out $(SHOTS) $$pages

bench: install ## run the benchmarks (each prints its targets PASS/FAIL), then one table; exit 1 on a miss
	@mkdir -p out; rm -f out/bench_results.jsonl; rc=0; \
	for b in bench/*.py; do case $$b in bench/_*|bench/floor.py) continue;; esac; \
	  echo "== $$b"; OBS_BENCH_RESULTS=$(CURDIR)/out/bench_results.jsonl $(BIN)/python $$b || rc=1; done; \
	echo "== targets"; $(BIN)/python bench/_targets.py out/bench_results.jsonl || rc=1; exit $$rc

clean: ## remove generated outputs under the work root (keeps ops/ history); `rm -rf .venv` for a full reset
	w=$(WR); rm -rf "$$w/out/weekly_report" "$$w/out/dashboard" "$$w/out/dashboard.versions" \
	  "$$w/out/latency_alerts" "$$w/out/demo_repo"
