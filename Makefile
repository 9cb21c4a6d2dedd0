# Two commands on a fresh machine: `make serve` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The sandbox interpreter must be readable by the unprivileged uid the sandbox runs as, so as
# root it lives outside the checkout (which may sit under /root, mode 0700).
SANDBOX_SYS_PYTHON ?= /usr/bin/python3.11
ifeq ($(shell id -u),0)
SANDBOX_VENV ?= /opt/agents-sandbox/venv
else
SANDBOX_VENV ?= $(CURDIR)/.venv-sandbox
endif
export SANDBOX_PYTHON := $(SANDBOX_VENV)/bin/python
PORT ?= 8080

.PHONY: serve test mutate mutate-pure smoke lint bench setup system-deps test-deps clean api-key list-api-keys revoke-api-key

$(VENV)/.installed: requirements-dev.txt layers/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# System packages from apt when missing (root; otherwise we say what to install):
# bubblewrap and Debian's own python3.11 (the sandbox venv) for everything, and for the tests only
# chromium (large, ~300 MB), which Playwright drives as it is (never a download of its own).
SYSTEM_PACKAGES := bubblewrap:bwrap util-linux:setpriv python3.11:$(SANDBOX_SYS_PYTHON)
TEST_PACKAGES := chromium:chromium npm:npm

define apt_install
	@missing=""; \
	for item in $(1); do \
	  package=$${item%%:*}; program=$${item#*:}; \
	  command -v $$program >/dev/null || [ -x $$program ] || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null; \
	  else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi
endef

system-deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

test-deps: system-deps
	$(call apt_install,$(TEST_PACKAGES))

$(SANDBOX_VENV)/.installed: sandbox_image/requirements.txt $(VENV)/.installed | system-deps
	$(SANDBOX_SYS_PYTHON) -m venv --without-pip $(SANDBOX_VENV)
	$(PY) -m pip --python $(SANDBOX_VENV)/bin/python install -q -r sandbox_image/requirements.txt
	chmod -R a+rX $(SANDBOX_VENV)
	touch $@

# The runtime interface client of the sandbox image (its base image ships one), beside the sandbox
# venv, not in it: the Lambda-mode test harness (tests/lambda_mode/) runs the image's handler with it.
$(SANDBOX_VENV)/lambda-ric/.installed: tests/lambda_mode/requirements.txt $(SANDBOX_VENV)/.installed
	$(PY) -m pip --python $(SANDBOX_VENV)/bin/python install -q --upgrade --target $(SANDBOX_VENV)/lambda-ric -r $<
	chmod -R a+rX $(SANDBOX_VENV)/lambda-ric
	touch $@

setup: system-deps $(VENV)/.installed $(SANDBOX_VENV)/.installed

# axe-core (Deque's accessibility engine) from npm, pinned: tests/browser/test_playground_a11y.py
# runs it in the page; PyPI's copies lag behind the version the issue was measured with.
AXE_VERSION := 4.14.1
AXE := $(VENV)/axe-$(AXE_VERSION)/node_modules/axe-core/axe.min.js
$(AXE): | test-deps $(VENV)/.installed
	npm install --prefix $(VENV)/axe-$(AXE_VERSION) --no-audit --no-fund --silent axe-core@$(AXE_VERSION)
	test -s $@

serve: setup
	PORT=$(PORT) $(PY) -m local.serve

# Three processes on two cores (most of the suite waits on servers, sandboxes and deadlines), then the tests
# marked serial alone: they measure the machine's CPU or look at every sandbox on it.
test: setup test-deps $(SANDBOX_VENV)/lambda-ric/.installed $(AXE)
	$(PY) -m pytest -q -n 6 --dist loadfile -m "not serial" --durations=25
	$(PY) -m pytest -q -m serial

# Every defence of docs/security.md, removed one at a time from a copy of the checkout, must fail
# its tests (tools/mutations.py is the table); CI runs it after make test.
mutate: setup test-deps $(SANDBOX_VENV)/lambda-ric/.installed
	$(PY) tools/mutate.py

# mutmut over the pure modules (tools/mutate_pure.py): every survivor killed or explained.
.venv-mutmut/.installed: requirements-mutmut.txt
	$(PYTHON) -m venv .venv-mutmut
	.venv-mutmut/bin/pip install -q -r requirements-mutmut.txt
	touch $@

mutate-pure: setup .venv-mutmut/.installed
	$(PY) tools/mutate_pure.py

.venv-lint/.installed: requirements-lint.txt
	$(PYTHON) -m venv .venv-lint
	.venv-lint/bin/pip install -q --upgrade pip
	.venv-lint/bin/pip install -q -r requirements-lint.txt
	touch $@

# The AWS SAM CLI in a virtualenv of its own (it pins libraries of its own too): `sam build` of
# the layer and every zip function, here, without Docker (tools/sam_build.py).
.venv-sam/.installed: requirements-sam.txt
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/pip install -q --upgrade pip
	.venv-sam/bin/pip install -q -r requirements-sam.txt
	touch $@

# ruff, cfn-lint, checkov (IaC security scan; every skipped check carries its reason in
# template.yaml, under the resource's Metadata.checkov.skip; --skip-download: offline, no API
# key), the SAM transform with a check of the roles it generates (tools/sam_check.py), the build
# check (every requirement set resolves to wheels for CPython 3.13 on glibc 2.34, both
# architectures; and the old python3.11/glibc 2.26 target is refused), and `sam build` of every
# zip part. The build check and sam build read PyPI.
lint: $(VENV)/.installed .venv-lint/.installed .venv-sam/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml
	.venv-lint/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
	.venv-lint/bin/python tools/sam_check.py
	$(PY) tools/build_check.py
	$(PY) tools/build_check.py --python 3.11 --glibc 2.26 --expect-failure sandbox_image/requirements.txt
	.venv-sam/bin/python tools/sam_build.py

bench: setup
	$(PY) benchmarks/load.py
	$(PY) benchmarks/api_turn.py
	$(PY) benchmarks/sandbox_latency.py
	$(PY) benchmarks/session_latency.py
	$(PY) benchmarks/live_output.py
	$(PY) benchmarks/session_memory.py
	$(PY) benchmarks/batch_throughput.py --requests 1000
	$(PY) benchmarks/large_files.py
	$(PY) benchmarks/real_data.py
	$(PY) benchmarks/preload_costs.py

# A deployed stack checks itself (tools/smoke.py): make smoke STACK=agents-api KEY=agk_... KEY2=agk_...
# (AWS credentials from your usual configuration), or make smoke URL=http://127.0.0.1:8080.
smoke: $(VENV)/.installed
	$(PY) tools/smoke.py $(if $(STACK),--stack $(STACK),--url $(or $(URL),http://127.0.0.1:$(PORT))) \
	  $(if $(KEY),--key $(KEY)) $(if $(KEY2),--key2 $(KEY2))

# Keys of a deployed stack (AWS credentials from your usual configuration):
#   make api-key STACK=agents-api WORKSPACE=team-a [NAME=ci] [RATE_LIMIT=120]
#   make list-api-keys STACK=agents-api ; make revoke-api-key STACK=agents-api KEY_ID=key_...
api-key: $(VENV)/.installed
	$(PY) -m cli.api_key create --stack $(STACK) --workspace $(WORKSPACE) --name "$(NAME)" $(if $(RATE_LIMIT),--rate-limit $(RATE_LIMIT))

list-api-keys: $(VENV)/.installed
	$(PY) -m cli.api_key list --stack $(STACK)

revoke-api-key: $(VENV)/.installed
	$(PY) -m cli.api_key revoke --stack $(STACK) $(KEY_ID)

clean:
	rm -rf $(VENV) .venv-sandbox .venv-lint .venv-sam .venv-mutmut .pytest_cache .ruff_cache
