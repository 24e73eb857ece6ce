# Handoff — the two commands that matter: `make run` and `make test`.
GO        ?= go
BIN       := bin/handoff
PICO_VERSION := 2.1.1

.PHONY: run build test test-short lint migrate clean assets

## run: build, migrate and seed the embedded database under ./data, then serve on :8080
run: build
	./$(BIN) serve --demo

## build: compile the binary into bin/
build:
	$(GO) build -o $(BIN) ./cmd/handoff

## test: every test this machine can run (PostgreSQL when TEST_DATABASE_URL is set, Chromium when installed), with -race
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## test-short: the tests without -race, for a quick loop
test-short:
	$(GO) test -count=1 ./...

## lint: go vet and a gofmt check
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## migrate: apply migrations to HANDOFF_DATABASE_URL (default: the embedded database)
migrate: build
	./$(BIN) migrate

## clean: remove the binary and the embedded database
clean:
	rm -rf bin data

## assets: refresh the vendored CSS from the npm registry at the pinned version
assets:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent @picocss/pico@$(PICO_VERSION) >/dev/null && tar xzf picocss-pico-$(PICO_VERSION).tgz && \
	  cp package/css/pico.min.css $(CURDIR)/static/vendor/pico-$(PICO_VERSION).min.css && \
	  cp package/LICENSE.md $(CURDIR)/static/vendor/pico-LICENSE.md && rm -rf $$tmp
