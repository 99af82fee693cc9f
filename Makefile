# prifence — set-up, demo, tests and benchmarks.  Every target installs what it
# needs into .venv first, so a fresh clone needs only Python 3.11, gcc and make.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2

.PHONY: all demo test test-fast bench verilog formal synth clean distclean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/prifence demo

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -q

bench: $(STAMP)
	$(VENV)/bin/prifence bench

verilog: $(STAMP)
	$(VENV)/bin/prifence verilog -o build/prifence_top.v

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV) *.egg-info

# Every formal proof (rtl/formal), then each broken variant must fail; prints the
# summary table.  `make test` runs the quick subset (tests/formal).
formal: $(STAMP)
	$(PY) -m prifence.formal --defects -j $(JOBS)

