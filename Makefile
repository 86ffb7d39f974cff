# 4RUNR Gateway — the two commands: `make run` and `make test`.
# Cargo uses one shared target dir; builds use at most 2 jobs on these small machines.

export CARGO_BUILD_JOBS ?= 2
CARGO ?= cargo

.PHONY: run test lint fmt build release help plugins plugin-examples wasm-target bench monitoring promtool browser

# Plugins built to WebAssembly components: the defaults go live in policies-wasm/, the test
# fixtures to target/plugin-fixtures/. Each is built alone: a plugin enables exactly one
# world feature of the SDK, and cargo would merge features across packages built together.
DEFAULT_PLUGINS := spec-policy chaos
FIXTURE_PLUGINS := deny-all deny-all-next loop-forever sleep-forever grow-memory always-trap bad-answer quota-thief broken-filter clock-and-random reads-files spec-policy-plus blocked-tools
WASM_OUT := $(or $(CARGO_TARGET_DIR),target)/wasm32-wasip2/release

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: plugins release ## Build plugins and gateway, start it on SQLite (data/), port 3000
	./target/release/gateway serve

wasm-target: ## Install the wasm32-wasip2 target (no-op when present)
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

# Each is copied as soon as it is built: a plugin that builds on another's library (as
# spec-policy-plus on spec-policy) rebuilds that one's .wasm without its exports.
plugins: wasm-target ## Build the default plugins into policies-wasm/ and the fixtures into target/plugin-fixtures/
	@mkdir -p target/plugin-fixtures
	@set -e; for p in $(DEFAULT_PLUGINS); do \
	  $(CARGO) build --quiet --release --target wasm32-wasip2 -p $$p; \
	  cp $(WASM_OUT)/$$(echo $$p | tr - _).wasm policies-wasm/$$p.wasm; done
	@set -e; for p in $(FIXTURE_PLUGINS); do \
	  $(CARGO) build --quiet --release --target wasm32-wasip2 -p $$p; \
	  cp $(WASM_OUT)/$$(echo $$p | tr - _).wasm target/plugin-fixtures/$$p.wasm; done
	@ls -l policies-wasm/*.wasm target/plugin-fixtures/*.wasm | awk '{print $$5, $$9}'

# The example plugin in other languages, built against sdk/wit with toolchains installed into
# the build's own folders: Python with componentize-py (PyPI, in a venv), JavaScript with
# componentize-js (npm). When a toolchain cannot be installed, the reason is printed and the
# test that needs its plugin says it skipped.
PY_VENV := $(or $(CARGO_TARGET_DIR),target)/py-venv
COMPONENTIZE_PY := componentize-py==0.25.1
JS_TOOLS := $(or $(CARGO_TARGET_DIR),target)/js-tools
COMPONENTIZE_JS := @bytecodealliance/componentize-js@0.23.0
EXAMPLE := plugins/examples/blocked-tools

plugin-examples: ## Build the Python and JavaScript example plugins into target/plugin-fixtures/ (installs their toolchains)
	@mkdir -p target/plugin-fixtures
	@if { test -x $(PY_VENV)/bin/pip || python3 -m venv $(PY_VENV); } >/dev/null 2>&1 \
	    && $(PY_VENV)/bin/pip install --quiet --disable-pip-version-check $(COMPONENTIZE_PY); then \
	  $(PY_VENV)/bin/componentize-py -d sdk/wit -w policy-plugin componentize --stub-wasi \
	    -p $(EXAMPLE)/python app -o target/plugin-fixtures/blocked-tools-py.wasm \
	  && ls -l target/plugin-fixtures/blocked-tools-py.wasm | awk '{print $$5, $$9}'; \
	else rm -f target/plugin-fixtures/blocked-tools-py.wasm; \
	  echo "plugin-examples: componentize-py could not be installed (python3 -m venv, pip): the Python example is not built"; fi
	@if { test -x $(JS_TOOLS)/node_modules/.bin/componentize-js \
	      || npm install --silent --no-audit --no-fund --prefix $(JS_TOOLS) $(COMPONENTIZE_JS); } >/dev/null 2>&1; then \
	  $(JS_TOOLS)/node_modules/.bin/componentize-js $(EXAMPLE)/js/app.js --wit sdk/wit -n policy-plugin \
	    -d stdio random clocks http fetch-event -o target/plugin-fixtures/blocked-tools-js.wasm >/dev/null \
	  && ls -l target/plugin-fixtures/blocked-tools-js.wasm | awk '{print $$5, $$9}'; \
	else rm -f target/plugin-fixtures/blocked-tools-js.wasm; \
	  echo "plugin-examples: componentize-js could not be installed (npm): the JavaScript example is not built"; fi

release: ## Build the release binary
	$(CARGO) build --release -p gateway

# promtool comes with Debian's prometheus package (its service is not started).
promtool:
	@command -v promtool >/dev/null || { echo "installing promtool (apt package prometheus)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
	  || { echo "promtool is missing and could not be installed: install Debian's prometheus package" >&2; exit 1; }

# Headless Chromium for the test that opens the API's docs page (Debian's package).
browser:
	@command -v chromium >/dev/null || { echo "installing chromium (apt package chromium)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium could not be installed: the docs page test will say it skipped"

monitoring: promtool ## Check the Prometheus configuration and rules, and run the alert rules' unit tests
	promtool check config --syntax-only monitoring/prometheus.yml
	promtool check rules monitoring/rules/*.yml
	cd monitoring && promtool test rules tests/gateway-alerts.test.yml

test: plugins plugin-examples monitoring browser ## Run the whole test suite (needs PostgreSQL on 127.0.0.1:5432 and Redis on 6379)
	$(CARGO) test --workspace

bench: plugins ## Run the journal load profile compressed to 2 minutes against a fresh gateway; prints where the report is
	$(CARGO) run --release -p bench -- load journal --time-scale 0.05

lint: ## Format check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all
