# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install manifest demo test lint unit freeze clean browser docs

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

# The dbt manifest the daily DAG renders one task per model from (dbt parse, no database).
MANIFEST := dbt/target/manifest.json
DBT_SOURCES := $(shell find dbt/models dbt/macros dbt/tests -type f 2>/dev/null) dbt/dbt_project.yml dbt/profiles.yml

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	$(BIN)/python -m quant.transform

manifest: $(MANIFEST)

install: $(STAMP) $(MANIFEST)

demo: install
	$(BIN)/quant demo

# ruff, then the import contracts of pyproject.toml [tool.importlinter] (dependency direction).
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The headless-browser test's tools (tests/e2e): Debian's chromium, never a downloaded browser,
# and playwright-core from npm. Installed when this machine can (root with apt-get; npm);
# without them the browser test is skipped and says why.
E2E_MODULES := tests/e2e/node_modules/.package-lock.json

$(E2E_MODULES): tests/e2e/package.json tests/e2e/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd tests/e2e && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the browser test will be skipped"; fi

browser: $(E2E_MODULES)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installable here: the browser test will be skipped"

test: lint browser
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest -m "not integration"

# The documentation site (docs/, mkdocs.yml) into build/site/; offline. The tests build it too.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

freeze: install
	$(BIN)/python -m pip freeze --exclude-editable > /tmp/quant-freeze.txt
	@echo "review /tmp/quant-freeze.txt, then copy the pins into requirements.txt"

clean:
	rm -rf .quant dbt/target dbt/logs .pytest_cache .ruff_cache
