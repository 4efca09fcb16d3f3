# The README's two commands: `make demo` (the main job on the embedded data) and `make test`.
# Both create .venv if there is none and install the kit into it (editable), once.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.coursekit-installed
PYTEST_ARGS ?=

.PHONY: setup demo test release clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml tools/torch_spec.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing $$(sh tools/torch_spec.sh) and the kit into $(VENV)"
	$(PY) -m pip install -q "$$(sh tools/torch_spec.sh)"
	$(PY) -m pip install -q -e .
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/coursekit demo

# pytest exits 5 when it collects no test: say so instead of failing on it.
test: setup
	@$(VENV)/bin/coursekit env
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

release: setup
	$(VENV)/bin/coursekit release --force

clean-venv:
	rm -rf $(VENV)
