# Alfred: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OIDC_PROVIDER := tests/oidc_provider
CHROMIUM ?= /usr/bin/chromium

.PHONY: help install run test test-deps lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies

run: $(STAMP) ## start Alfred on the embedded defaults (or the services in the environment) with demo data
	$(BIN)/python -m alfred.launcher

test-deps: $(STAMP) ## what the browser and login tests need: Chromium (Debian) and an OIDC provider (npm)
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "Installing Chromium from Debian's packages"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@if [ ! -d $(OIDC_PROVIDER)/node_modules ]; then \
		echo "Installing the OIDC provider for the login tests (npm)"; \
		cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error; \
	fi

test: test-deps ## run the whole suite against real PostgreSQL + pgvector and Redis
	$(BIN)/ruff check --quiet .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest --create-db $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken"; fi; exit $$rc

lint: $(STAMP) ## ruff and the import contract
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP) ## print the benchmark figures (API latency with both tokens)
	$(BIN)/python manage.py bench_api

.PHONY: messages
messages: $(STAMP) ## extract and compile the French translations
	$(BIN)/python manage.py makemessages -l fr --no-obsolete --ignore=.venv --ignore=node_modules --ignore=tests
	$(BIN)/python manage.py compilemessages -l fr --ignore=.venv --ignore=node_modules

clean: ## remove the virtualenv (var/, the data, is kept)
	rm -rf $(VENV)
