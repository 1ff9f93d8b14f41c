# The two commands of the README: `make run` and `make test`. Everything else is set-up they share.
# uv is taken from PATH when present; otherwise a pinned copy is bootstrapped into .tools/ with pip.

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup run test lint bench clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

setup: $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --quiet

run: setup
	.venv/bin/backcare screen --format text examples/intake-desk-worker.json

test: setup
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/ruff format --check src tests benchmarks
	.venv/bin/mypy
	.venv/bin/backcare rules --check
	.venv/bin/pytest

bench: setup
	.venv/bin/python benchmarks/screening.py

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
