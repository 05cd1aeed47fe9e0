# berth: build, demo, test. See README.md.
CARGO ?= cargo

.PHONY: build release demo test test-v2 lint unit integration clean

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Build berth, make a busybox bundle and run a container that says hello.
demo: build
	hack/demo.sh target/x86_64-unknown-linux-gnu/debug/berth

# Every test: formatting, lints, unit tests (no root) and integration tests (root) on
# this machine, then the cgroup integration tests again on a pure cgroup v2 kernel in QEMU
# (hack/v2-guest.sh; V2GUEST=0 skips that part).
V2GUEST ?= 1
test: lint
	$(CARGO) test --all-targets
ifneq ($(V2GUEST),0)
	$(MAKE) test-v2
endif

# The cgroups:: integration tests on pure cgroup v2 (Debian's kernel under QEMU, TCG).
test-v2:
	hack/v2-guest.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --bins

integration:
	$(CARGO) test --test integration

clean:
	$(CARGO) clean
