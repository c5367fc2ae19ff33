#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager)
# from their published Go modules and prints the directory that holds them.
#
# The binaries are cached outside the repository, keyed by the versions in
# hack/controlplane/go.mod, so CI and later runs reuse them:
#   ${PARTNERCLOUD_CACHE:-$HOME/.cache/partnercloud}/controlplane/<key>/
# When KUBEBUILDER_ASSETS names a directory that already holds all three
# binaries, that directory is used and nothing is built.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/controlplane"
binaries=(etcd kube-apiserver kube-controller-manager)

has_all() {
  local dir="$1"
  for b in "${binaries[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of: ${binaries[*]}; building instead" >&2
fi

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2 }' "$module/go.mod" | head -1)"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2 }' "$module/go.mod" | head -1)"
go_version="$(GOTOOLCHAIN=local go env GOVERSION)"
sum="$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-12)"
key="k8s-${k8s_version}_etcd-${etcd_version}_${go_version}_${sum}"
out="${PARTNERCLOUD_CACHE:-$HOME/.cache/partnercloud}/controlplane/$key"

if has_all "$out"; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the control plane" >&2; exit 1; }
echo "building control plane $key (several minutes on a cold cache)" >&2
tmp="$out.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=${k8s_version} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${minor} \
 -X k8s.io/component-base/version.gitTreeState=clean"

cd "$module"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$SECONDS
go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
echo "control plane built in $((SECONDS - start))s" >&2

mkdir -p "$(dirname "$out")"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
