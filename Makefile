# One obvious command per task. Each target creates its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
DEMO_DIR ?= demo
DEMO_DB ?= $(DEMO_DIR)/annuaire.sqlite
DEMO_PROFESSIONALS ?= 20000

.PHONY: install demo test test-fast lint bench clean

$(BIN)/annuaire: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/annuaire

install: $(BIN)/annuaire

# The main job on the embedded default: fictitious data, SQLite, every interface.
demo: install
	$(BIN)/python -m annuaire.demo --dir $(DEMO_DIR) --professionals $(DEMO_PROFESSIONALS)

# The whole test suite (PostgreSQL tests skip when no server answers, except in CI).
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-fast: install
	$(BIN)/python -m pytest -q -x -m "not slow and not browser"

# Rules and strictness: [tool.ruff] and [tool.mypy] in pyproject.toml.
lint: install
	$(BIN)/ruff check annuaire tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache test-artifacts
