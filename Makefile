# Homeline — the two commands a newcomer needs:
#   make run    start the appliance on embedded defaults (./data, web UI on :8080)
#   make test   build and run every test; installs the test peers it lacks
#
# Everything else is optional. Run `make help` for the list.

CARGO      ?= cargo
BIN        := homeline
CROSS_TARGETS := aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
APT_GET    := DEBIAN_FRONTEND=noninteractive apt-get
# Twilio's Python library: the tests cross-check signatures and TwiML with it.
TWILIO_PY  := 9.13.0
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help run build release test test-rust test-ui test-browser test-deps ui ui-check \
        cross cross-smoke image image-test check-deps fmt lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

run: ## start the appliance on embedded defaults (data in ./data, web UI on http://localhost:8080)
	$(CARGO) run --release --bin $(BIN) -- run

build: ## debug build
	$(CARGO) build --locked

release: ## optimised native build (target/release/homeline)
	$(CARGO) build --release --locked

test: test-rust test-ui ## all tests: unit, integration (real binary, sipp, RFC 4475, the UI in Chromium) and the UI's unit tests

test-rust: test-deps ## unit and integration tests (they start the real binary, real SIP peers and Chromium; tests/browser.rs drives ui/tests/*.spec.cjs)
	$(CARGO) test --locked --features test-hooks

test-ui: test-deps ## the web UI's unit tests (API client, guards, composables) in vitest
	cd ui && npm test

test-browser: test-deps ## only the browser scenarios (screenshots in target/browser-shots/)
	$(CARGO) test --locked --features test-hooks --test browser

test-deps: ## install what the tests need when it is missing (sipp, baresip, Chromium, node modules, python twilio, aiosmtpd)
	@missing=""; \
	 command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	 command -v baresip >/dev/null || missing="$$missing baresip-core"; \
	 [ -x /usr/lib/chromium/chromium ] || missing="$$missing chromium"; \
	 command -v ip >/dev/null || missing="$$missing iproute2"; \
	 command -v pebble >/dev/null || missing="$$missing pebble"; \
	 command -v dig >/dev/null || missing="$$missing bind9-dnsutils"; \
	 command -v miniupnpd >/dev/null || missing="$$missing miniupnpd-nftables"; \
	 command -v turnserver >/dev/null || missing="$$missing coturn"; \
	 command -v upnpc >/dev/null || missing="$$missing miniupnpc"; \
	 command -v nft >/dev/null || missing="$$missing nftables"; \
	 if [ -n "$$missing" ]; then \
	   echo "installing test peers:$$missing"; \
	   $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq --no-install-recommends $$missing >/dev/null; \
	 fi
	@command -v node >/dev/null || { $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq nodejs npm >/dev/null; }
	@[ -d ui/node_modules/vitest ] && [ -d ui/node_modules/axe-core ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)
	@python3 -c 'import sys, twilio; sys.exit(twilio.__version__ != "$(TWILIO_PY)")' 2>/dev/null || { \
	   python3 -m pip --version >/dev/null 2>&1 || { $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq python3-pip >/dev/null; }; \
	   python3 -m pip install -q twilio==$(TWILIO_PY) 2>/dev/null || python3 -m pip install -q --break-system-packages twilio==$(TWILIO_PY); }
	@python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install -q aiosmtpd==1.4.6 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd==1.4.6

ui: ## rebuild ui-dist/ from ui/ (commit the result)
	cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm run size

ui-check: ui ## fail if the committed ui-dist/ differs from a fresh build
	@git diff --exit-code --stat -- ui-dist || { echo "ui-dist/ is stale: run 'make ui' and commit it"; exit 1; }
	@test -z "$$(git status --porcelain -- ui-dist)" || { git status --short -- ui-dist; echo "ui-dist/ has files not committed"; exit 1; }

cross: ## static, stripped binaries for aarch64 and armv7 (musl), UI embedded
	@for t in $(CROSS_TARGETS); do image/cross.sh $$t || exit 1; done

CROSS_OUT ?= $(or $(CARGO_TARGET_DIR),target)

cross-smoke: ## both Pi binaries under qemu: version, /health, SIP OPTIONS, SIGTERM
	image/smoke-qemu.sh $(CROSS_OUT)/aarch64-unknown-linux-musl/release/$(BIN)
	image/smoke-qemu.sh $(CROSS_OUT)/armv7-unknown-linux-musleabihf/release/$(BIN)

image: ## (root) the flashable Pi image target/image/homeline-<version>-rpi-arm64.img.xz (image/README.md)
	flock /tmp/homeline-cargo.lock image/cross.sh aarch64-unknown-linux-musl
	image/build.sh $(CROSS_OUT)/aarch64-unknown-linux-musl/release/$(BIN)

image-test: ## (root) boot the image under qemu-system-aarch64: Homeline up, data grown, clean poweroff
	image/test.sh

check-deps: ## refuse C dependencies that do not cross-build (OpenSSL, aws-lc, libsrtp…)
	image/check-deps.sh

fmt: ## format the code
	$(CARGO) fmt --all

lint: ## formatting and clippy, as CI runs them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets --features test-hooks -- -D warnings

clean: ## remove build output (keeps ./data)
	$(CARGO) clean
