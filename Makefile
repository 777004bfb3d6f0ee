# The two commands of the README: `make demo` and `make test`. Both set everything up first.
# The virtual environment's interpreter: Debian's own python3 where it is 3.11 or newer and can make
# one (built with profile-guided and link-time optimisation, and not as a shared library: ~15% less
# CPU for the same Python than a plain build from source such as pyenv's; bench/README.md, "The
# interpreter"), else the python3 on PATH. `make PYTHON=/path/to/python3 ...` picks another.
PYTHON ?= $(shell /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1 && echo /usr/bin/python3 || echo python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEBS   := wireguard-go wireguard-tools tshark iperf3 iputils-ping iproute2 iptables openresolv prometheus

.PHONY: demo test bench setup debs clean notebooks notebooks-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Debian packages the network tests use; installed only when running as root and missing.
debs:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "not root: Debian packages not installed, root-only tests will skip"; fi

# The teaching notebooks in JupyterLab (the `notebooks` extra: jupyterlab, ipykernel, nbclient).
NB_STAMP := $(VENV)/.notebooks
$(NB_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install -q -e '.[notebooks]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(NB_STAMP)

notebooks: $(NB_STAMP)
	$(VENV)/bin/jupyter lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) notebooks/

# Re-run every notebook and save its outputs in the .ipynb (fixed keys and seeds: same bytes each run).
notebooks-outputs: $(NB_STAMP)
	$(PY) notebooks/save_outputs.py

demo: setup
	$(VENV)/bin/wgscope demo

test: setup debs
	$(PY) -m pytest -q -ra

# valgrind: only bench.replay_bench --instructions (callgrind counts) uses it, not the tests.
bench: DEBS += valgrind
bench: setup debs
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache
