# Thin front over CMake and the scripts under scripts/. Every target can be
# run on a fresh Debian 12 machine; `make test` and `make run` install what
# is missing first.

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
SANITIZE   ?= OFF
REPLICAS   ?= 1
TLS        ?= 0

export BUILD_DIR BUILD_TYPE SANITIZE REPLICAS TLS

.PHONY: all deps build test up down run lint bench seed image-check clean

all: build

deps:
	@scripts/deps.sh

build:
	@scripts/build.sh

test: deps build
	@scripts/test.sh

up: deps build
	@scripts/stack.sh up

down:
	@scripts/stack.sh down

run: deps build
	@scripts/run.sh

lint:
	@scripts/lint.sh

bench: deps build
	@scripts/bench.sh

seed: build
	@scripts/seed.sh

image-check: deps build
	@scripts/image-check.sh

clean:
	rm -rf $(BUILD_DIR)
