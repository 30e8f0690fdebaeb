# The two commands of the README: `make demo` and `make test` (and `make bench`). All set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fashionchameleon-installed

.PHONY: test demo bench setup clean

setup: $(STAMP)

$(STAMP): requirements.txt tools/setup_env.sh
	bash tools/setup_env.sh $(VENV) $(PYTHON) $(TORCH_VERSION)
	touch $@

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m fashionchameleon demo

bench: $(STAMP)
	$(PY) -m fashionchameleon bench --json outputs/bench.json

clean:
	rm -rf $(VENV) .pytest_cache
