# The two commands of the README: `make run` and `make test`. Everything else is set-up they share.
# uv is taken from PATH when present; otherwise a pinned copy is bootstrapped into .tools/ with pip.

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test test-postgres lint bench bench-availability bench-pages bench-load clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Byte-compiled once after each change of the lock (then `make run` starts without compiling anything); the stamp
# lives in .venv, so a new environment compiles again.
setup: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --quiet
	@[ .venv/.bytecode -nt uv.lock ] || { $(UV) sync --locked --quiet --compile-bytecode && touch .venv/.bytecode; }

# `make run`: the demo clinic on http://localhost:8000/ (data in ./var). `make run PORT=8080 HOST=0.0.0.0` to change
# where it listens; HOST is taken only from the make command line, never from a shell's own HOST variable.
run: setup
	.venv/bin/backcare demo --if-empty --port $(or $(PORT),8000)
	.venv/bin/backcare serve --host $(if $(filter command line,$(origin HOST)),$(HOST),127.0.0.1) --port $(or $(PORT),8000)

test: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports --no-logo --no-cache
	.venv/bin/backcare rules --check
	.venv/bin/pytest $(PYTEST_PARALLEL)
	@$(MAKE) --no-print-directory -o setup test-postgres

# The suite runs on every core (pytest-xdist); tests that must not share a worker's neighbour carry an xdist_group
# mark. `make test PYTEST_PARALLEL=` runs it in one process.
PYTEST_PARALLEL ?= -n auto --dist loadgroup

# The suite again on a throwaway PostgreSQL cluster that the tests start themselves (tests/pgcluster.py), one
# cluster for all workers, each worker in its own test database.
# Left out: the clinical core's own tests, which never touch a database (tests/test_ci_make.py checks they don't),
# and the cluster's tests, which start their own clusters. Without PostgreSQL installed this says so and passes,
# except under CI (CI set), where it fails.
CORE_ONLY_TESTS := tests/rules tests/test_screening_properties.py tests/test_core_boundaries.py \
	tests/test_instruments.py tests/test_rulebase_check.py tests/test_vignettes.py tests/test_cli_screen.py \
	tests/test_cli_bad_input.py tests/test_pgcluster.py

test-postgres: setup
	@if pg=$$(.venv/bin/python tests/pgcluster.py check 2>&1); then \
		echo "Running the tests that use the database again, on $$pg"; \
		BACKCARE_TEST_DB=postgres .venv/bin/pytest $(PYTEST_PARALLEL) $(addprefix --ignore=,$(CORE_ONLY_TESTS)); \
	elif [ -n "$$CI" ]; then \
		echo "FAILED: under CI the tests must also run on PostgreSQL. $$pg" >&2; exit 1; \
	else \
		echo "NOTE: the tests were NOT run on PostgreSQL, only on SQLite. $$pg" >&2; \
	fi

bench: setup
	.venv/bin/python benchmarks/screening.py

# Availability search at chain scale on SQLite and PostgreSQL (docs/benchmarks.md); builds 1,000,000 appointments
# per database, so it takes a while. Pass options with ARGS, e.g. `make bench-availability ARGS="--sizes 10000,100000"`.
bench-availability: setup
	.venv/bin/python benchmarks/availability.py $(ARGS)

# Every page of each role's menu, the API lists and the exports at 1,000 and 100,000 clients (the clinic of `backcare
# demo --scale`) on SQLite and PostgreSQL, against the targets of docs/benchmarks.md. The 100,000 build takes minutes;
# `make bench-pages ARGS="--sizes 1000,10000 --databases sqlite"` for a quicker run.
bench-pages: setup
	.venv/bin/python benchmarks/pages.py $(ARGS)

# `backcare serve` under load on loopback (locust): one process (--workers 1) and the default side by side, at 8,
# 32 and 64 users, on SQLite and PostgreSQL (docs/benchmarks.md). E.g. `make bench-load ARGS="--seconds 10"`.
bench-load: setup
	.venv/bin/python benchmarks/load.py $(ARGS)

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
