# The two commands of the README: `make demo` and `make test`. Both set everything up.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
ARCH   := $(shell uname -m)

# torch builds that install offline on the project machines (see README, "Install").
ifeq ($(ARCH),x86_64)
TORCH := torch==2.14.1 torchvision==0.29.1
else ifeq ($(ARCH),aarch64)
TORCH := torch==2.9.1 torchvision==0.24.1
else
TORCH := torch torchvision
endif

.PHONY: demo test install clean docs gpu-check

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/featcache demo

test: $(VENV)/.installed
	$(PY) -m pytest

# Every CUDA path on small generated and real data, one table (under 8 minutes on one GPU).
gpu-check: $(VENV)/.installed
	$(PY) benchmarks/gpu_check.py --device cuda

docs: $(VENV)/.installed
	$(PY) -m cli.commands_doc > docs/commands.md.tmp && mv docs/commands.md.tmp docs/commands.md

clean:
	rm -rf $(VENV) demo runs .pytest_cache
