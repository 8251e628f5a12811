# Control Tower — every target does its own set-up (virtualenv, dependencies).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv browser dev cloud-local test test-unit test-integration screenshots plan-offline lint fmt clean bench soak

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install everything (done by the other targets)

browser: ## Chromium + chromedriver for the console's browser tests (apt-get, only when missing)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium chromium-driver; fi

dev: $(STAMP) ## Run the whole system locally: emulator, Postgres, functions (Ctrl-C stops)
	$(VENV)/bin/ctower dev

cloud-local: $(STAMP) ## The local stack in production configuration: Terraform's env, Secret Manager and Cloud SQL stood in
	$(VENV)/bin/ctower dev --cloud

test: $(STAMP) browser lint ## Lint, types, and the whole test suite (unit, integration, e2e, browser)
	$(PY) -m pytest -q

test-unit: $(STAMP) ## Only the fast unit tests
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) browser ## Integration and end-to-end tests (emulator + real Postgres)
	$(PY) -m pytest -q tests/integration tests/e2e

screenshots: $(STAMP) browser ## Refresh the console screenshots in docs/ (the browser tests, writing there)
	CT_SCREENSHOTS_DIR=$(CURDIR)/docs $(PY) -m pytest -q tests/e2e/test_console_browser.py

plan-offline: $(STAMP) ## terraform init/validate/plan offline (real provider schema) on the three var sets, then apply + second plan
	$(PY) -m tools.tfplan --second-plan tools/tfplan/cases/minimal.tfvars terraform/terraform.tfvars.example tools/tfplan/cases/large.tfvars

bench: $(STAMP) ## Every measurement against its floor (same run); table printed and in docs/benchmarks.md
	$(PY) -m bench.run

soak: $(STAMP) ## 10,000 mixed webhooks + DB checks, 2,000 random bodies per endpoint, the fault drills in full; docs/soak.md
	$(PY) -m bench.soak --write
	$(PY) -m bench.soak_fuzz --write
	$(PY) -m bench.drills

lint: $(STAMP) ## ruff on all Python; mypy --strict on functions/, shared/, ops/, bench/, tools/ and main.py
	$(VENV)/bin/ruff check functions shared ops main.py tests bench tools
	$(VENV)/bin/mypy functions shared ops main.py bench tools

fmt: $(STAMP) ## Apply ruff's fixes
	$(VENV)/bin/ruff check --fix functions shared ops main.py tests bench tools

clean: ## Remove the virtualenv and local data (.local holds the dev database)
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
