# Closed Loop: `make run` starts the three services on SQLite; `make test` runs every test on
# SQLite and PostgreSQL. Both install what they need first (uv, then the locked dependencies).

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: install run test lint format bench bench-search bench-directory bench-referral bench-notifier bench-notifier-idle bench-replicas bench-auth bench-measures bench-web clean

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install
	@bash scripts/run-all.sh

test: install
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen mypy shared/src services/*/src
	@$(UV) run --frozen lint-imports --no-logo
	@$(UV) run --frozen hadolint Dockerfile
	@$(UV) run --frozen python scripts/check_deploy.py

format: install
	@$(UV) run --frozen ruff check --fix .
	@$(UV) run --frozen ruff format .

# Benchmarks print figures (they need PostgreSQL at 127.0.0.1:5432 and wrk: apt-get install wrk)
bench: install
	@$(UV) run --frozen python bench/crud.py

bench-search: install
	@$(UV) run --frozen python bench/search.py

bench-directory: install
	@$(UV) run --frozen python bench/directory.py

bench-referral: install
	@$(UV) run --frozen python bench/referral.py

bench-notifier: install
	@$(UV) run --frozen python bench/notifier.py

bench-notifier-idle: install
	@$(UV) run --frozen python bench/notifier_idle.py

bench-replicas: install
	@$(UV) run --frozen python bench/replicas.py

bench-auth: install
	@$(UV) run --frozen python bench/auth.py

bench-measures: install
	@$(UV) run --frozen python bench/measures.py

bench-web: install
	@$(UV) run --frozen python bench/web.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
