# Every target creates .venv and installs what it needs, so a fresh clone works with one command.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck browser openscad vendor clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) vendor openscad
	$(BIN)/fabflow demo

test: $(STAMP) vendor browser openscad
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

# The web UI's 3D view: three.js from the npm registry at the exact version package-lock.json
# pins (never a CDN at run time), and only the files the viewer imports, side by side. The
# examples import the bare name 'three' and each other by relative path; both are rewritten to
# the file beside them, so no import map (an inline script the Content-Security-Policy would
# have to allow) is needed.
VENDOR := fabflow/web/static/vendor/three
THREE := node_modules/three
THREE_ADDONS := controls/OrbitControls loaders/STLLoader loaders/OBJLoader loaders/3MFLoader \
  libs/fflate.module utils/BufferGeometryUtils
vendor: $(VENDOR)/VERSION
$(VENDOR)/VERSION: package.json package-lock.json Makefile
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --omit=dev --ignore-scripts --no-audit --no-fund
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	cp $(THREE)/LICENSE $(THREE)/build/three.core.js $(THREE)/build/three.module.js $(VENDOR)/
	for f in $(THREE_ADDONS); do \
	  sed -E -e "s#from ['\"]three['\"]#from './three.module.js'#" \
	    -e "s#from ['\"]\.\./[a-z]+/#from './#" $(THREE)/examples/jsm/$$f.js \
	    > $(VENDOR)/$${f#*/}.js || exit 1; \
	done
	! grep -lE "from ['\"](three['\"]|\.\./)" $(VENDOR)/*.js  # an import left would not load
	node -p "require('./$(THREE)/package.json').version" > $@

lint: $(STAMP)
	$(BIN)/ruff check fabflow tests bench
	$(BIN)/ruff format --check fabflow tests bench

typecheck: $(STAMP)
	$(BIN)/mypy fabflow

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(VENDOR)
