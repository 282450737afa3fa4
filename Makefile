# Everything goes through the project's own virtualenv; each target creates it when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv run test lint bench accuracy clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/crawler crawl config/examples/syria-russia.txt

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check crawler tests bench accuracy
	$(VENV)/bin/mypy --strict crawler

bench: $(STAMP)
	$(PY) -m bench

# The accuracy report also compares the date reader with htmldate and extruct (an extra).
ACCURACY_STAMP := $(VENV)/.installed-accuracy

$(ACCURACY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,accuracy]'
	touch $(ACCURACY_STAMP)

accuracy: $(ACCURACY_STAMP)
	$(PY) -m accuracy

clean:
	rm -rf $(VENV) .crawler .pytest_cache .mypy_cache .ruff_cache
