# pairs - two commands do all the set-up: `make run` and `make test`.
#
#   make run            live Binance USD-M feed, everything in one process (embedded mode)
#   make demo           the same, fed by the built-in offline exchange
#   make test           the whole suite
#   make superuser      an admin account, in the databases of make run and of both demos
#   make test-postgres  the suite again on PostgreSQL (a running server)
#   make bench          throughput, cost, load, storage and alert-quality figures (see the README)
#   make drills         fault drills of distributed mode (see the README)

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
# The front end's files from the npm registry (package.json pins them), each copied
# from node_modules into static/vendor: Chart.js, its zoom plugin and the gestures
# the plugin pans and pinches with.
VENDOR_SOURCES := chart.js/dist/chart.umd.min.js chartjs-plugin-zoom/dist/chartjs-plugin-zoom.min.js hammerjs/hammer.min.js
VENDOR := $(addprefix static/vendor/,$(notdir $(VENDOR_SOURCES)))
# The demo market: a spread with a 5 s half-life and a 3-sigma shock every minute,
# so entries and exits happen while you watch (the first entry about 2.5 minutes
# after the market opens: 100 bars to be ready, then 30 related snapshots; `make
# bench` replays it). Both demos trade it; on fresh databases they compute the same
# numbers (the seed fixes every trade).
DEMO_MARKET ?= --seed 7 --rate 100 --half-life 5 --spread-sigma 5 --shock-every 60 --shock-size 3
# Beside the pair, the demo exchange lists a universe of 30 USDT perpetuals with
# klines and 24 h tickers, a few groups of them cointegrated by construction, for the
# screener to find (0: the pair only).
DEMO_UNIVERSE ?= 30
DEMO_ARGS ?= $(patsubst --%,--sim-%,$(DEMO_MARKET) --universe $(DEMO_UNIVERSE))
EXCHANGE_PORT ?= 9100
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run demo superuser run-distributed demo-distributed redis test test-postgres bench drills setup setup-dev browser clean

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

# An admin account for /admin/ in every database the targets above use (each has
# its own): asked once, each database migrated first.
SUPERUSER_DATABASES ?= $(or $(DATABASE_URL),sqlite:///db.sqlite3) sqlite:///demo.sqlite3 sqlite:///demo-distributed.sqlite3
superuser: setup
	$(PY) manage.py superuser $(addprefix --database-url ,$(SUPERUSER_DATABASES))

# Distributed mode: daphne, ingest_binance and a Celery worker with beat as separate
# processes (Procfile) over Redis (default: the local one).
run-distributed: export REDIS_URL := $(REDIS_URL)
run-distributed: setup redis
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile web ingest worker

# The same processes fed by the offline exchange (the Procfile's `exchange`), on the
# demo market, in a database of their own.
demo-distributed: export REDIS_URL := $(REDIS_URL)
demo-distributed: export DATABASE_URL ?= sqlite:///demo-distributed.sqlite3
demo-distributed: export BINANCE_WS_URL := ws://127.0.0.1:$(EXCHANGE_PORT)/market
demo-distributed: export BINANCE_REST_URL := http://127.0.0.1:$(EXCHANGE_PORT)
demo-distributed: setup redis
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v0
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) EXCHANGE_PORT=$(EXCHANGE_PORT) \
		DEMO_MARKET="$(DEMO_MARKET) --universe $(DEMO_UNIVERSE)" $(VENV)/bin/honcho start -f Procfile exchange web ingest worker

redis: setup
	@$(PY) -c 'import redis, sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' "$(REDIS_URL)" 2>/dev/null || \
		{ echo "distributed mode needs Redis at $(REDIS_URL): start it, or set REDIS_URL." >&2; exit 1; }

# First the habits: lint and format (ruff), the layers (import-linter), types (mypy,
# strict on the pure modules; all three configured in pyproject.toml) and no model
# change without its migration; then the suite.
test: setup-dev browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	DATABASE_URL=sqlite://:memory: $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite on PostgreSQL: Django's test runner creates test_<name> from the URL's
# database name (and the end-to-end tests test_<name>_processes). The browser tests
# are left to `make test`: the end-to-end command tests already run the whole system
# on PostgreSQL here, and what a page looks like does not depend on the database.
test-postgres: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pairs
test-postgres: setup-dev
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
		*) echo "make test-postgres needs a PostgreSQL DATABASE_URL, not $$DATABASE_URL" >&2; exit 1;; esac
	$(PY) -m pytest --ignore=tests/dashboard/test_browser.py --ignore=tests/test_admin_browser.py $(PYTEST_ARGS)

bench: setup-dev
	$(PY) bench/bench_ingest.py $(BENCH_ARGS)
	$(PY) bench/bench_analytics.py
	$(PY) bench/bench_dashboard.py
	$(PY) bench/bench_load.py
	$(PY) bench/bench_storage.py
	$(PY) bench/bench_signals.py --demo-market "$(DEMO_MARKET)"
	$(PY) bench/bench_backtest.py
	$(PY) bench/bench_screener.py

# Distributed mode through Redis, worker, daphne and ingestion restarts and 429/418
# answers, against embedded mode on the same seed (needs redis-server and chromium).
drills: setup-dev browser
	$(PY) bench/drills.py $(DRILLS_ARGS)

setup: $(VENV)/.runtime $(VENDOR)
setup-dev: $(VENV)/.dev $(VENDOR)

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

# The browser tests (the dashboard's, the admin's) drive Debian's chromium (browser downloads are not
# an option): install it when it is missing and we may (root), else say so.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ if [ "$$(id -u)" = 0 ]; then echo "installing chromium for the browser test"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		  else echo "chromium is missing: the browser test will be skipped (apt-get install chromium)"; fi; }

# npm ci again whenever the pins change; each vendor file is copied from its package.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || \
		{ echo "pairs needs Node.js and npm to install Chart.js and its zoom plugin from the npm registry: install Node.js 18 or newer." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VENDOR): node_modules/.package-lock.json
	mkdir -p $(dir $@)
	cp node_modules/$(filter %/$(notdir $@),$(VENDOR_SOURCES)) $@

clean:
	rm -rf $(VENV) node_modules static/vendor
