# 4RUNR Gateway — the two commands: `make run` and `make test`.
# Cargo uses one shared target dir; builds use at most 2 jobs on these small machines.

export CARGO_BUILD_JOBS ?= 2
CARGO ?= cargo

.PHONY: run test lint fmt build release help

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: release ## Build and start the gateway on SQLite (data/), port 3000
	./target/release/gateway serve

release: ## Build the release binary
	$(CARGO) build --release -p gateway

test: ## Run the whole test suite (needs PostgreSQL on 127.0.0.1:5432 and Redis on 6379)
	$(CARGO) test --workspace

lint: ## Format check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all
