# partnercloud — build, test and demo entry points.
#
# Build outputs are cached outside the repository so that CI and later runs
# on the same machine reuse them: the Rust target directory below, and the
# control-plane binaries under ~/.cache/partnercloud/controlplane/ (see
# hack/controlplane.sh).

SHELL := /bin/bash
PARTNERCLOUD_CACHE ?= $(HOME)/.cache/partnercloud
RUST_KEY := $(shell rustc -V | sha256sum | cut -c1-12)
export CARGO_TARGET_DIR ?= $(PARTNERCLOUD_CACHE)/target-$(RUST_KEY)
export CARGO_TERM_COLOR ?= never

.PHONY: test dev controlplane build crds lint

## test: build the control plane and the crate, then run every test (unit and
## integration against a real kube-apiserver + etcd + controller-manager).
test:
	@set -euo pipefail; \
	assets="$$(bash hack/controlplane.sh)"; \
	echo "control plane binaries: $$assets"; \
	KUBEBUILDER_ASSETS="$$assets" cargo test --locked --all-targets

## dev: the main job: a local control plane, the operator and the simulator,
## the examples applied and shown converging. DEV_ARGS=--until-ready exits
## once everything is Ready.
dev:
	@set -euo pipefail; \
	assets="$$(bash hack/controlplane.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" cargo run --locked --quiet -- dev $(DEV_ARGS)

## controlplane: build (or find) etcd, kube-apiserver and kube-controller-manager.
controlplane:
	@bash hack/controlplane.sh

## build: build the partnercloud binary.
build:
	cargo build --locked

## crds: regenerate crds/ from the Rust types.
crds:
	cargo run --locked --quiet -- crd > crds/partnercloud.yaml

## lint: formatting and clippy, as before every commit.
lint:
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
