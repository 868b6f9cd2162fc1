# The two commands a new machine needs: `make up` and `make test`. Each creates .venv when it is
# missing and installs the project into it, so nothing but Python >= 3.11 and make is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test bench install lock clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/spp up --demo

test: $(STAMP)
	$(BIN)/ruff check services gateway migrations tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# requirements.lock: every runtime dependency (and the build backend) pinned with the hashes of
# every file PyPI has for it, resolved for any platform on Python 3.11 (the image's); the image
# installs only from it, so two builds of one commit install the same files. Run after editing
# pyproject.toml's dependencies; uv reads no pip.conf, so the lock names no local index.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
		| $(BIN)/uv pip compile pyproject.toml - --generate-hashes --universal --python-version 3.11 \
			--custom-compile-command 'make lock' --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .spp .spp-test
