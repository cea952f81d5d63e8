# Two commands on a fresh machine: `make run` (train the embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
WORKDIR ?= runs/default
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install fashion-mnist tcmalloc chromium run test test-all test-fast test-parity parity-extra lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt timm  # the tests' oracle of augment policies (pyproject)
	touch $@

# Fashion-MNIST's IDX files from Debian (prepared into TFDS offline on first use).
fashion-mnist:
	@if [ ! -d $(FASHION_MNIST_DIR) ]; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "no apt-get: TFDS will try to download fashion_mnist instead"; fi; \
	fi

# tcmalloc from Debian: the entry points restart themselves with it preloaded, a ~25% faster CPU train step than
# with glibc's malloc (imagenet_jax/parallel/allocator.py); without it they run as they are.
tcmalloc:
	@if ! ldconfig -p | grep -q libtcmalloc_minimal; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get install -y -qq libtcmalloc-minimal4 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libtcmalloc-minimal4); \
	  else echo "no apt-get: install tcmalloc (gperftools) yourself for faster CPU steps"; fi; \
	fi

# Headless Chromium and its WebDriver from Debian, for the report's browser test (tests/report/test_browser.py).
chromium:
	@if ! command -v chromedriver >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	  else echo "no apt-get: install chromium and its chromedriver yourself (the browser test skips without)"; fi; \
	fi

run: install fashion-mnist tcmalloc
	$(PY) -m imagenet_jax train --config configs/default.py --workdir $(WORKDIR)

# The default run skips the slow end-to-end tests; CI (CI=true, as .ci/run runs) runs them too.
TEST_SELECTION := $(if $(filter true 1,$(CI)),,-m "not slow")
# pytest-randomly orders the tests anew each run (no test may depend on another's leftovers); the seed is printed
# so that `make test TEST_SEED=N` repeats an order.
ifndef TEST_SEED
TEST_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
TEST_ORDER = -p randomly --randomly-seed=$(TEST_SEED)

# CI also installs the parity extra (torch, torchvision), so the torchvision parity and TenCrop tests run there;
# under CI a test whose oracle does not import fails instead of skipping (tests/conftest.py), and -rs lists any skip.
CI_EXTRAS := $(if $(filter true 1,$(CI)),parity-extra,)
CI_REPORT := $(if $(filter true 1,$(CI)),-rs,)

parity-extra: install
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,parity]'

test: install fashion-mnist tcmalloc chromium $(CI_EXTRAS)
	@echo "test order: --randomly-seed=$(TEST_SEED) (make test TEST_SEED=$(TEST_SEED) repeats it)"
	$(PY) -m pytest -q -n 2 --durations=15 $(CI_REPORT) $(TEST_ORDER) $(TEST_SELECTION)

test-all: install fashion-mnist tcmalloc chromium
	@echo "test order: --randomly-seed=$(TEST_SEED) (make test-all TEST_SEED=$(TEST_SEED) repeats it)"
	$(PY) -m pytest -q -n 2 --durations=15 $(TEST_ORDER)

test-fast: test

# Logits of converted torchvision (and Keras) models against the originals: installs the `parity` extra (torch,
# torchvision), runs the parity tests, slow ones included, then rewrites PARITY.md's table from what they measured.
PARITY_LOG ?= /tmp/imagenet_jax_parity.jsonl
test-parity: parity-extra
	rm -f $(PARITY_LOG)
	IMAGENET_JAX_PARITY_LOG=$(PARITY_LOG) $(PY) -m pytest -q -n 2 \
	  tests/convert/test_torchvision_parity.py tests/convert/test_keras_parity.py
	$(PY) tests/convert/parity_report.py $(PARITY_LOG) --update PARITY.md --command "make test-parity"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache  # the layer contract of ARCHITECTURE.md (pyproject.toml [tool.importlinter])
