# berth: build, demo, test. See README.md.
CARGO ?= cargo

.PHONY: build release demo test lint unit integration clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Build berth, make a busybox bundle and run a container that says hello.
demo: build
	hack/demo.sh target/debug/berth

# Every test: formatting, lints, unit tests (no root) and integration tests (root).
test: lint
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --bins

integration:
	$(CARGO) test --test integration

clean:
	$(CARGO) clean
