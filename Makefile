# ORTwin developer entry points (GNU make).
#
#   make demo   set up .venv (core install) and run the baseline + a stress scenario
#   make test   set up .venv (with the dev extra) and run the whole test suite
#
# The core install (make demo) never pulls torch. make test installs the `vision` extra
# (onnxruntime, OpenCV) and the `vision-train` extra (Ultralytics with torch, ~6 GB) so that
# the camera pipeline, including a one-epoch training run, is tested too.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
VPY    := $(BIN)/python
REPS   ?= 20
CMP_REPS ?= 4

CORE_STAMP := $(VENV)/.installed-core
DEV_STAMP  := $(VENV)/.installed-dev

.DEFAULT_GOAL := help

.PHONY: help all venv setup dev demo calibrate-demo test browser app screenshots vision-model lint bench bench-scaleout bench-vision nowcast-accuracy \
	clean distclean

help:
	@echo "ORTwin make targets:"
	@echo "  make demo      create .venv (core install), validate scenarios, run baseline + pacu_closed_beds,"
	@echo "                 then compare manual, rules and ml-cpsat on both (CMP_REPS replications),"
	@echo "                 now-cast the recorded demo day at 11:00,"
	@echo "                 then calibrate on Jan 2022 of the bundled log and replay each Feb week"
	@echo "  make calibrate-demo  only the calibration + replay part of the demo"
	@echo "  make app       start the what-if app (Streamlit) on http://localhost:8501"
	@echo "  make test      create/update .venv with the dev extra, install Debian's chromium for"
	@echo "                 the browser tests when missing, run ruff, then pytest (-n 2)"
	@echo "  make screenshots  regenerate docs/img/ screenshots of the app"
	@echo "  make vision-model render, train (offline) and evaluate the room-state camera model"
	@echo "  make lint      ruff check ."
	@echo "  make bench     run the benchmarks in bench/ (twin, duration model, CP-SAT, now-cast)"
	@echo "  make nowcast-accuracy  the now-cast against real and simulated days"
	@echo "  make bench-scaleout  10,000 replications of a 20-OR week, scaling, batch size, memory (~25 min)"
	@echo "  make bench-vision  camera model throughput, and classifier against detector cost"
	@echo "  make venv      create .venv and install the project (core, editable)"
	@echo "  make dev       create .venv and install the project with the dev extra"
	@echo "  make clean     remove outputs and caches (keeps .venv); distclean also removes .venv"
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) REPS=$(REPS) CMP_REPS=$(CMP_REPS)"

all: test

# --- virtual environment -------------------------------------------------------------------

# Created once; order-only prerequisite below so its timestamp never forces reinstalls.
$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: ORTwin needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip || echo "warning: could not upgrade pip; continuing" >&2

# Reinstalled whenever pyproject.toml changes (dependencies, extras, entry points).
$(CORE_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet -e '.[dev,vision,vision-train]'
	@touch $@

venv setup: $(CORE_STAMP)

dev: $(DEV_STAMP)

# --- everyday targets ----------------------------------------------------------------------

demo: $(CORE_STAMP)
	$(BIN)/ortwin validate scenarios/*.yaml
	$(BIN)/ortwin run scenarios/baseline.yaml --reps $(REPS) --out out/baseline
	$(BIN)/ortwin run scenarios/pacu_closed_beds.yaml --reps $(REPS) --out out/pacu_closed_beds
	$(BIN)/ortwin compare --scenarios scenarios/baseline.yaml scenarios/pacu_closed_beds.yaml \
		--policies manual,rules,ml-cpsat --reps $(CMP_REPS) --workers 2 --out out/compare
	$(BIN)/ortwin report out/compare -o out/compare/report.html --png out/compare/png
	$(BIN)/ortwin nowcast --scenario scenarios/baseline.yaml --plan $(LIVE).plan.csv \
		--events $(LIVE).feed.jsonl --at 11:00 --json out/nowcast/baseline_tuesday_1100.json
	$(MAKE) --no-print-directory calibrate-demo

# Calibrate on January 2022 of the bundled case log, then replay every February week.
LIVE    := scenarios/live/baseline_tuesday
LOG     := calibration/data/or_case_log_2022_jan_feb.csv
MAPPING := calibration/mappings/or_case_log_2022.yaml
calibrate-demo: $(CORE_STAMP)
	$(BIN)/ortwin calibrate $(LOG) --mapping $(MAPPING) --as-of 2022-01-31 -o out/calibrated/jan2022.yaml
	$(BIN)/ortwin replay $(LOG) --mapping $(MAPPING) --scenario out/calibrated/jan2022.yaml \
		--week 2022-W05 2022-W06 2022-W07 2022-W08 --reps 40 --json out/calibrated/replay_feb2022.json

test: $(DEV_STAMP) browser
	$(BIN)/ruff check .
	$(VPY) -m pytest -n 2 -q

# Debian's chromium and chromium-driver for the browser tests (tests/test_browser.py), installed
# only when missing; a test tool never downloads a browser.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	else \
		echo "installing Debian's chromium and chromium-driver for the browser tests"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q >/dev/null && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
			chromium chromium-driver >/dev/null; \
	fi

# The camera model: render the data set, train offline (seeded), export ONNX into vision/models/,
# then score it on both held-out sets (2 CPU cores: about 45 minutes to train, 15 to evaluate)
VISION_EPOCHS ?= 35
VISION_PER_CLASS ?= 400
vision-model: $(DEV_STAMP)
	$(BIN)/ortwin vision train --out out/vision --per-class $(VISION_PER_CLASS) --epochs $(VISION_EPOCHS) \
		--seed 7 --model-out vision/models/or_states.onnx
	$(BIN)/ortwin vision evaluate --data out/vision/data --json vision/models/or_states_eval.json \
		--card vision/models/or_states.md

# The what-if app for perioperative leaders, on http://localhost:8501
app: $(CORE_STAMP)
	$(BIN)/streamlit run app.py --browser.gatherUsageStats false

# Regenerate the README's screenshots of the app (docs/img/)
screenshots: $(DEV_STAMP) browser
	$(VPY) docs/screenshot.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

bench: $(CORE_STAMP)
	$(VPY) bench/bench_twin.py
	$(VPY) bench/bench_forecast.py
	$(VPY) bench/bench_cpsat.py
	$(VPY) bench/bench_nowcast.py --json out/nowcast/bench.json

# How good the now-cast is: the real log's February (a few minutes), and simulated days fed by
# perfect states and by the camera model (needs the dev install; rendering ~7 min a day)
nowcast-accuracy: $(DEV_STAMP)
	$(VPY) bench/nowcast_accuracy.py --json out/nowcast/accuracy_real.json
	$(VPY) bench/nowcast_accuracy_sim.py --days 3 --json out/nowcast/accuracy_sim.json

# The camera model's throughput, and what a detector would cost instead (needs the dev install)
bench-scaleout: $(CORE_STAMP)
	$(VPY) bench/bench_scaleout.py --json out/bench_scaleout.json

bench-vision: $(DEV_STAMP)
	$(VPY) bench/bench_vision.py --json out/vision/bench.json
	$(VPY) bench/bench_vision_arch.py --json out/vision/bench_arch.json

clean:
	rm -rf out build dist .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
