# The two commands that do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo simulates a lender on a new database of its own: 120 loans booked over
# 80 days through the decision engine and its controls, 240 days of end of day,
# a downturn (every borrower's default hazard x 4) so arrears reach stage 3.
# reports/ holds the database and the HTML report; LENDCORE_DB_URL, when set, is
# used instead and must name an empty database.
demo: $(STAMP)
	@mkdir -p reports
	@if [ -z "$$LENDCORE_DB_URL" ]; then rm -f reports/demo.db reports/demo.db-wal reports/demo.db-shm reports/demo.db.key reports/demo.db.eod.lock; fi
	LENDCORE_DB_URL="$${LENDCORE_DB_URL:-sqlite:///reports/demo.db}" $(BIN)/lendcore simulate --loans 120 --days 240 --seed 20261126 --stress 4 --html reports/portfolio.html

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/servicing.py
	$(BIN)/python benchmarks/eod.py --sizes 10000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
