# amsm: two commands for a fresh machine.
#   make run   set up, then start the embedded default (Temporal dev server, lab, worker)
#   make test  set up, then ruff, mypy and the whole pytest suite
#   make test-unit  the fast loop: ruff, mypy, unit tests and history replay
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint typecheck pytest setup odbc chromium ldap clean bench

setup: $(STAMP) odbc chromium

$(STAMP): pyproject.toml | ldap
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "amsm: $(PYTHON) is required (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The DSM driver needs unixODBC and Debian's SQLite3 ODBC driver (the lab's DSMs).
odbc:
	@if odbcinst -q -d 2>/dev/null | grep -q '^\[SQLite3\]'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "amsm: installing unixodbc and libsqliteodbc"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unixodbc libsqliteodbc >/dev/null; \
	else \
	  echo "amsm: the SQLite3 ODBC driver is missing; run: sudo apt-get install unixodbc libsqliteodbc"; exit 1; \
	fi

# Directory login (console/directory.py): python-ldap builds against libldap and
# libsasl2's headers; the tests start Debian's slapd on loopback (tests/support/slapd.py).
ldap:
	@if [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ] && [ -x /usr/sbin/slapd ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "amsm: installing libldap-dev, libsasl2-dev and slapd (the console's directory login)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libldap-dev libsasl2-dev slapd >/dev/null; \
	else \
	  echo "amsm: LDAP headers or slapd missing (the console's directory login); run: sudo apt-get install libldap-dev libsasl2-dev slapd"; exit 1; \
	fi

# The web console's browser tests drive Debian's Chromium (never `playwright install`).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "amsm: installing chromium (the web console's browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "amsm: Chromium is missing (the web console's browser tests); run: sudo apt-get install chromium"; exit 1; \
	fi

run: setup
	$(BIN)/python -m workers.embedded

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two test processes, each with its own Temporal dev server; a file's tests stay in one.
pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

test: setup lint typecheck pytest

# The fast loop: lint, types, unit tests and history replay (no dev server, no lab).
test-unit: setup lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider tests/unit tests/test_histories.py

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
