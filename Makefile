GO      ?= go
BIN     := bin/replicant
PKGS    := ./...

# What `replicant --version` prints. A release is a tag (v0.3.0); between
# tags, git describe says how far past one (v0.3.0-4-gabc1234), and with no
# tag at all the version is "devel". Override: make build VERSION=v1.0.0.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell c=$$(git rev-parse --short=12 HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null && echo $$c || echo $$c-dirty; })
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The image: `make image IMAGE=registry.example/replicant:v1`.
IMAGE   ?= replicant:$(VERSION)
STATIC  := bin/static/replicant

.PHONY: build static image test race bench fuzz lint proto clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/replicant

# A static Linux binary (no libc: Pebble and everything else are pure Go)
# for FROM scratch images and copying to any Linux host. -trimpath keeps
# this checkout's paths out of it.
static:
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o $(STATIC) ./cmd/replicant

# The container image (Dockerfile: FROM scratch + the static binary).
# bin/static/data is an empty directory the Dockerfile copies as /data, so
# that the volume belongs to the unprivileged user the server runs as.
image: static
	mkdir -p bin/static/data
	docker build -t $(IMAGE) .

# The README's test command. -count=1: test/ builds the replicant binary
# itself (TestMain), which go test's cache does not see, so a cached result
# could hide a change to the server.
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# Issue 8's targets, each measured beside Redis/etcd: met / NOT MET (~15 min).
bench: build
	bench/targets.sh

# Short fuzz runs of every fuzz target (CI runs these too).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEntry$$' -fuzztime 15s ./internal/storage/logrec/
	$(GO) test -run '^$$' -fuzz '^FuzzCommand$$' -fuzztime 15s ./internal/api/resp/
	$(GO) test -run '^$$' -fuzz '^FuzzGuard$$' -fuzztime 10s ./internal/api/resp/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 10s ./internal/multileader/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s ./internal/backup/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)

clean:
	rm -rf bin .replicant-dev

# Regenerate the gRPC/protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc).
proto:
	protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative internal/transport/pb/peer.proto
