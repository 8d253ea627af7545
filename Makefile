# geo-crm: two commands on a fresh machine.
#   make run    set everything up and serve the app on http://127.0.0.1:5000
#   make test   set everything up for a throw-away test database and run the tests
# With DATABASE_URL set, that server is used instead of the embedded cluster.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
GEO := $(VENV)/bin/geo-crm
HOST ?= 127.0.0.1
PORT ?= 5000
CUSTOMERS ?= 5000
PYTEST_ARGS ?=

.PHONY: run test deps deps-test venv assets db sample serve logins lock clean-db bench help
help:
	@echo "make run | make test | make bench | make clean-db"

deps:
	@scripts/setup_system.sh

deps-test:
	@scripts/setup_system.sh --test

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "python: creating virtualenv $(VENV) and installing requirements.txt"
	@test -x $(PY) || python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

geo_crm/static/vendor/manifest.json: package.json package-lock.json scripts/vendor_assets.py
	@$(PY) scripts/vendor_assets.py

assets: venv geo_crm/static/vendor/manifest.json

db: venv
	@$(GEO) db start
	@$(GEO) db upgrade

sample: db
	@$(GEO) sample load --if-empty --customers $(CUSTOMERS)

logins:
	@echo ""
	@echo "geo-crm is at http://$(HOST):$(PORT)"
	@echo "demo logins (username / password):"
	@for u in admin executive sales regional account service logistics customer; do printf "  %-10s %s-demo\n" $$u $$u; done
	@echo ""

run: deps assets sample logins
	@$(GEO) serve --host $(HOST) --port $(PORT)

test: deps-test assets
	@if [ -z "$$DATABASE_URL" ]; then $(GEO) db start; fi
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lock: venv
	@$(PY) -m pip freeze --exclude-editable | sed '1i # Locked runtime and test dependencies (pip freeze). Update with: make lock' > requirements.txt

clean-db: venv
	@$(PY) -c "from geo_crm import embedded_pg; embedded_pg.destroy()"
