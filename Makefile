# The two set-up commands the README names: `make demo` and `make test`.
VENV  := .venv
BIN   := $(VENV)/bin
STATE ?= $(CURDIR)/.state/demo
WORKERS ?= 2
BACKEND ?= host-gw

.PHONY: deps demo down test lint unit integration clean

deps:
	@scripts/install-deps.sh

demo: deps
	$(BIN)/pikube dev up --workers $(WORKERS) --backend $(BACKEND) --state-dir $(STATE)

down:
	$(BIN)/pikube dev down --state-dir $(STATE)

lint: deps
	$(BIN)/ruff check core pikube master agent web tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/yamllint -s -c ansible/.yamllint ansible
	cd ansible && ../$(BIN)/ansible-lint --profile production --offline

test: lint
	$(BIN)/pytest tests

unit: deps
	$(BIN)/pytest tests -m "not integration"

integration: deps
	$(BIN)/pytest tests -m integration

clean:
	rm -rf $(VENV) .tools .state .mypy_cache .ruff_cache .pytest_cache
