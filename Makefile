# amsm: two commands for a fresh machine.
#   make run   set up, then start the embedded default (Temporal dev server, lab, worker)
#   make test  set up, then ruff, mypy and the whole pytest suite
#   make test-unit  the fast loop: ruff, mypy, unit tests and history replay
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint typecheck pytest setup system odbc chromium haproxy ldap clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml | system
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "amsm: $(PYTHON) is required (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Debian's packages the project needs, installed in one apt-get when run as root (else
# named for the user to install):
# - unixodbc, libsqliteodbc: the DSM driver, against the lab's DSMs (SQLite3 ODBC);
# - chromium: the web console's browser tests (never `playwright install`);
# - haproxy: the mutual-TLS test puts it in front of the dev server (docs/site/production.md);
# - libldap-dev, libsasl2-dev: python-ldap builds against them (console/directory.py);
# - slapd: the directory login tests start it on loopback (tests/support/slapd.py).
system:
	@missing=""; \
	odbcinst -q -d 2>/dev/null | grep -q '^\[SQLite3\]' || missing="$$missing unixodbc libsqliteodbc"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	[ -f /usr/include/ldap.h ] || missing="$$missing libldap-dev"; \
	[ -f /usr/include/sasl/sasl.h ] || missing="$$missing libsasl2-dev"; \
	[ -x /usr/sbin/slapd ] || missing="$$missing slapd"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "amsm: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "amsm: system packages missing; run: sudo apt-get install$$missing"; exit 1; \
	fi

# The former names of parts of `system`.
odbc chromium haproxy ldap: system

run: setup
	$(BIN)/python -m workers.embedded

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Four test processes, each with its own Temporal dev server; a file's tests stay in one.
# Four on two CPUs: the suite waits (reboots, timeouts, the browser) as much as it
# computes: two processes kept the CPUs 69% busy (16:58 on 2026-12-07), three 83%
# (13:03), four 80% in 10:18 on another machine of the same kind (two cores), where the
# whole suite passed. The longest files first, in the collection's order
# (tests/support/order.py).
# The 30 slowest tests are listed at the end, so a slow run says where its time went.
pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider -n 4 --dist loadfile --no-loadscope-reorder --durations=30

test: setup lint typecheck pytest

# The fast loop: lint, types, unit tests and history replay (no dev server, no lab).
test-unit: setup lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider tests/unit tests/test_histories.py

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
