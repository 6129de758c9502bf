# Licentia — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export LICENTIA_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.DEFAULT_GOAL := help
.PHONY: help install lock run serve test test-sqlite lint format bench fuzz clean chromium nginx messages audit crash

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@echo "==> Installing Licentia with its server and dev dependencies into $(VENV)"
	@echo "    (a few minutes the first time: pip lists the packages it collects, then"
	@echo "    installs them all at once, silently for a minute or two, until Installed)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade -c requirements.lock pip setuptools
	$(BIN)/pip install --progress-bar off -c requirements.lock -e '.[server,dev]'
	touch $(STAMP)
	@echo "==> Installed"

install: $(STAMP) ## Create/update the virtual environment with server and dev dependencies

lock: ## Write requirements.lock anew: the newest releases pyproject.toml allows, pinned
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install --quiet --upgrade pip setuptools
	$(VENV).lock/bin/pip install --quiet --progress-bar off -e '.[server,dev]'
	{ sed -n '1,3p' requirements.lock; $(VENV).lock/bin/pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(VENV).lock

# The quickstart is a development set-up: it may create ./var/master.key by itself.
run: export LICENTIA_ENVIRONMENT ?= development
run: $(STAMP) ## Migrate the SQLite database under ./var, seed the demo, serve on LICENTIA_PORT (8000)
	@# Before seeding: seeding revokes the demo API key a server on that port answers to.
	@$(BIN)/licentia serve --check-address
	@echo "==> Migrating the database"
	$(BIN)/licentia db upgrade
	@echo "==> Seeding the demo vendor"
	$(BIN)/licentia demo
	@echo "==> Serving on http://$${LICENTIA_HOST:-127.0.0.1}:$${LICENTIA_PORT:-8000} (Ctrl-C stops it)"
	$(BIN)/licentia serve

serve: $(STAMP) ## Serve without seeding (uses LICENTIA_* settings)
	$(BIN)/licentia serve

lint: $(STAMP) ## ruff, ruff format --check, mypy, import-linter
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint chromium nginx ## Lint, audit the dependencies, then the whole suite on SQLite and PostgreSQL
	$(BIN)/python .ci/audit_dependencies.py --allow-unaudited
	$(BIN)/pytest -n 2 --dist loadgroup

crash: $(STAMP) ## SIGKILL the server 500 times per backend under a mixed write load (100 while it runs jobs, 70 while it renews and delivers webhooks), then check
	LICENTIA_CRASH_KILLS=$${LICENTIA_CRASH_KILLS:-500} \
	LICENTIA_JOB_CRASH_KILLS=$${LICENTIA_JOB_CRASH_KILLS:-100} \
	LICENTIA_RENEWAL_KILLS=$${LICENTIA_RENEWAL_KILLS:-50} \
	LICENTIA_DELIVERY_KILLS=$${LICENTIA_DELIVERY_KILLS:-20} \
	  $(BIN)/pytest tests/e2e/test_crash_safety.py tests/e2e/test_job_crash_safety.py \
	  tests/e2e/test_renewal_crash_safety.py -p no:randomly -s

audit: $(STAMP) ## pip-audit the locked dependencies; fails if any could not be audited
	$(BIN)/python .ci/audit_dependencies.py

FUZZ_SEED := $(shell date +%s)
# The suite fuzzes every API operation with a few cases and a fixed seed; this is the
# long run, with a new seed each time (pass LICENTIA_FUZZ_SEED=N to repeat one).
fuzz: export LICENTIA_FUZZ_EXAMPLES ?= 1000
fuzz: export LICENTIA_FUZZ_STATEFUL_STEPS ?= 20
fuzz: export LICENTIA_FUZZ_CHAINS ?= 1000
fuzz: export LICENTIA_FUZZ_SEED ?= $(FUZZ_SEED)
fuzz: $(STAMP) ## Fuzz every API operation with Schemathesis (1,000 cases each, 1,000 chains), SQLite and PostgreSQL
	@echo "==> Fuzzing with seed $$LICENTIA_FUZZ_SEED, $$LICENTIA_FUZZ_EXAMPLES cases per operation, $$LICENTIA_FUZZ_CHAINS chains of $$LICENTIA_FUZZ_STATEFUL_STEPS steps"
	$(BIN)/pytest tests/e2e/test_api_fuzzing.py

chromium: ## Install Debian's Chromium for the browser tests, if it is missing
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

nginx: ## Install Debian's nginx for the reverse proxy tests (deploy/nginx), if it is missing
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
	  { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nginx; }

messages: $(STAMP) ## Extract the web fronts' texts and update the catalogues (then translate)
	$(BIN)/pybabel extract -F src/licentia/server/web/babel.cfg -k N_ --no-location \
	  --sort-output -o src/licentia/server/web/locale/messages.pot src/licentia/server/web
	$(BIN)/pybabel update -i src/licentia/server/web/locale/messages.pot \
	  -d src/licentia/server/web/locale --no-fuzzy-matching

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP) ## Run the benchmarks (figures go into docs/benchmarks.md)
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y wrk  # the C load generator
	$(BIN)/python -m bench

clean: ## Remove the virtual environment, caches and ./var (mail, screenshots)
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
