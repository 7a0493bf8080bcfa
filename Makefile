# Herald's tasks. `make run` starts the product, `make test` runs every
# check CI runs.

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 10s

.PHONY: all build run test check fmt-check vet staticcheck unit fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN)/herald ./cmd/herald

## run: start Herald on its embedded defaults with the example automations
run: build
	$(BIN)/herald serve --config herald.yaml

## test: formatting, vet, staticcheck, the race-enabled tests, a short fuzz run
test: check unit fuzz

check: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly; `make fuzz FUZZTIME=5m` runs longer.
# Minimizing a new input is bounded too: unbounded, it can outlast
# -fuzztime, which go test then reports as a failure. scripts/fuzz runs a
# target again once when it timed out without a finding.
FUZZ = GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz
fuzz:
	$(FUZZ) FuzzDecode ./event
	$(FUZZ) FuzzParse ./rules
	$(FUZZ) FuzzTemplate ./rules
	$(FUZZ) FuzzVerify ./links
	$(FUZZ) FuzzVerify ./actions/webhook
	$(FUZZ) FuzzEvents ./ingest/collector
	$(FUZZ) FuzzForms ./ingest/collector
	$(FUZZ) FuzzSchema ./schema
	$(FUZZ) FuzzCustomerToken ./natsbus
	$(FUZZ) FuzzSplitStored ./natsbus
	$(FUZZ) FuzzParse ./ruletest

## bench: measure Herald against its targets, its peers and raw NATS, and
## write bench/RESULTS.md; about 15 minutes, never part of `make test`.
## BENCH_FLAGS=-quick runs small counts (about 2 minutes);
## BENCH_FLAGS=-only=forms,hot measures some figures. bench/README.md
## explains the figures.
NATSCLI_VERSION := v0.5.0
BENCH_BIN       := $(CURDIR)/bench/bin
BENCH_FLAGS     ?=
bench: build
	@$(BENCH_BIN)/nats --version 2>/dev/null | grep -qx '$(NATSCLI_VERSION)' || \
		{ echo "installing natscli $(NATSCLI_VERSION) into bench/bin"; \
		  GOBIN=$(BENCH_BIN) $(GO) install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION); }
	$(GO) build -o $(BENCH_BIN)/benchrun ./bench/cmd/benchrun
	GO=$(GO) $(BENCH_BIN)/benchrun $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
