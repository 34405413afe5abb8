# Strom: `make run` starts one broker on 127.0.0.1:9092 (Kinesis API on
# http://127.0.0.1:4567) with data in ./data;
# `make test` runs the whole suite. Both set up .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run cluster test lint bench bench-storage bench-recompression bench-kinesis bench-txn bench-share bench-failover bench-tls clean kcat \
	chromium console-screenshot

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

kcat:
	@command -v kcat >/dev/null 2>&1 || { \
	  echo "installing kcat with apt-get"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; }

# the console's browser tests drive Debian's Chromium through chromedriver
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  (apt-get update -qq || true) && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# a picture of the console of a running `make run`: URL=... OUT=... to choose
console-screenshot: $(STAMP) chromium
	$(BIN)/python -m tests.support.browser $(or $(URL),http://127.0.0.1:9644/) \
	  $(or $(OUT),console.png)

run: $(STAMP)
	$(BIN)/strom serve --override log.dirs=./data --override listeners=PLAINTEXT://127.0.0.1:9092 \
	  --override strom.metrics.address=127.0.0.1:9644 --override strom.console.address=127.0.0.1:9644 \
	  --override strom.kinesis.listener=http://127.0.0.1:4567

cluster: $(STAMP)
	$(BIN)/python -m broker.local_cluster --data-dir ./data/cluster

test: $(STAMP) kcat chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.produce_consume

bench-storage: $(STAMP)
	$(BIN)/python -m bench.storage

bench-recompression: $(STAMP)
	$(BIN)/python -m bench.recompression

bench-kinesis: $(STAMP)
	$(BIN)/python -m bench.kinesis

bench-txn: $(STAMP)
	$(BIN)/python -m bench.txn

bench-share: $(STAMP)
	$(BIN)/python -m bench.share_groups

bench-tls: $(STAMP)
	$(BIN)/python -m bench.tls

# KILLS=10 for a shorter soak
bench-failover: $(STAMP)
	$(BIN)/python -m bench.failover --kills $(or $(KILLS),100)

clean:
	rm -rf $(VENV) data .pytest_cache
