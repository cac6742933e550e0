# The two commands: `make run` (materialize everything on the built-in sample lake) and `make test`;
# `make check` is the fast tier to iterate with.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test check dev up down clean bench

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# hadoop-aws and the AWS SDK for s3a:// lakes, from PyPI (Maven is unreachable); cached in ~/.cache/stedi.
	$(BIN)/python -m stedi_assets.s3a_jars > /dev/null
	$(BIN)/python -m stedi_assets.sql_guard > /dev/null  # stedi sql's read-only guard: javac, once, into ~/.cache/stedi
	# Debian's Chromium for the UI test (playwright cannot download browsers here).
	command -v chromium > /dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; } || \
		echo "WARNING: chromium could not be installed: the UI test will be skipped"
	# Debian's PostgreSQL for `stedi up` (its binaries are found in /usr/lib/postgresql/*/bin when not on PATH).
	command -v initdb > /dev/null || ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql > /dev/null; } || \
		echo "WARNING: PostgreSQL could not be installed: use stedi up --no-postgres"
	touch $@

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml.example $@

# The built-in sample lake is generated explicitly (never as a side effect of a run), then every asset runs.
run: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/stedi sample --if-missing
	$(BIN)/stedi run

# Everything (what .ci/run calls): lint, types, and every test tier.
test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --durations=15

# The fast tier: lint, types, and the tests that need no whole-graph run, no server and no browser, on
# WORKERS processes (pytest-xdist; each has its own SparkSession and starts moto if a test asks). A test file
# stays on one worker (--dist loadfile): a module's scenarios are classified together (batches.py).
WORKERS ?= 2
check: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not graph and not services and not browser" -n $(WORKERS) --dist loadfile --durations=10

dev: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/stedi sample --if-missing
	$(BIN)/dagster dev

# Spark Connect server + Dagster daemon + webserver, kept running: sensor-triggered runs start without a JVM.
up: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/stedi up

# The benchmark, from this checkout (a long run: all sizes by default); e.g. make bench SIZES=1e5,1e6 for a quick one.
bench: setup
	$(BIN)/python -m benchmarks.bench $(if $(SIZES),--sizes $(SIZES))

down:
	test ! -x $(BIN)/stedi || $(BIN)/stedi down

clean: down
	rm -rf sample_lake $(DAGSTER_HOME) .services
