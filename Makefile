# pairs - two commands do all the set-up: `make run` and `make test`.
#
#   make run    live Binance USD-M feed, everything in one process (embedded mode)
#   make demo   the same, fed by the built-in offline exchange
#   make test   the whole suite
#   make bench  throughput, cost and storage figures (see the README)

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
CHARTJS := static/vendor/chart.umd.min.js
# The demo market: a spread with a 5 s half-life and a 3-sigma shock every minute,
# so entries and exits happen while you watch.
DEMO_ARGS ?= --sim-half-life 5 --sim-spread-sigma 5 --sim-shock-every 60 --sim-shock-size 3

.PHONY: run demo run-distributed test bench setup setup-dev browser clean

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py runpairs --host $(HOST) --port $(PORT)

# The demo keeps its simulated market out of the live database.
demo: export DATABASE_URL ?= sqlite:///demo.sqlite3
demo: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py runpairs --host $(HOST) --port $(PORT) --simulate $(DEMO_ARGS)

# Distributed mode: daphne, ingest_binance and a Celery worker with beat as separate
# processes (Procfile) over Redis (default: the local one).
run-distributed: export REDIS_URL ?= redis://127.0.0.1:6379/0
run-distributed: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

test: setup-dev browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup-dev
	$(PY) bench/bench_ingest.py $(BENCH_ARGS)
	$(PY) bench/bench_analytics.py
	$(PY) bench/bench_dashboard.py
	$(PY) bench/bench_storage.py

setup: $(VENV)/.runtime $(CHARTJS)
setup-dev: $(VENV)/.dev $(CHARTJS)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "pairs needs Python 3.11 or newer: install it, or run make with PYTHON=/path/to/python3.11." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

# The dashboard's browser test drives Debian's chromium (browser downloads are not
# an option): install it when it is missing and we may (root), else say so.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ if [ "$$(id -u)" = 0 ]; then echo "installing chromium for the browser test"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		  else echo "chromium is missing: the browser test will be skipped (apt-get install chromium)"; fi; }

$(CHARTJS): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || \
		{ echo "pairs needs Node.js and npm to install Chart.js from the npm registry: install Node.js 18 or newer." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $@)
	cp node_modules/chart.js/dist/chart.umd.min.js $@

clean:
	rm -rf $(VENV) node_modules static/vendor
