# Every target creates .venv and installs what it needs, so a fresh clone works with one command.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck browser openscad clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) openscad
	$(BIN)/fabflow demo

test: $(STAMP) browser openscad
	$(BIN)/pytest -q -ra

# The web UI's tests drive Debian's Chromium (Playwright cannot download a browser offline).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# Products made from OpenSCAD models render with Debian's openscad (the reference renderer, and
# the .csg export the fast path evaluates on manifold3d), in bubblewrap's sandbox where it works,
# with OpenSCAD's default font (Liberation) found through fontconfig.
SCAD_PACKAGES := openscad bubblewrap fontconfig fonts-liberation
openscad:
	(command -v openscad && command -v bwrap && fc-list | grep -qi liberation) >/dev/null \
	  || (apt-get update -qq && apt-get install -y -qq $(SCAD_PACKAGES))

lint: $(STAMP)
	$(BIN)/ruff check fabflow tests bench
	$(BIN)/ruff format --check fabflow tests bench

typecheck: $(STAMP)
	$(BIN)/mypy fabflow

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
