#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-scheduler, kubectl, etcd) from the pinned
# Go helper modules in hack/controlplane/ into a version-keyed cache directory outside the
# repository, and prints that directory's bin path as the last line of stdout.
# A second run with the binaries present builds nothing.
#
#   APQN_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/apqn-operator)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
api_mod="$here/controlplane/apiserver"
etcd_mod="$here/controlplane/etcd"

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go (>= 1.24) is needed to build the local control plane; install it and retry" >&2
  exit 1
fi

mod_version() { # module-dir module-path -> version pinned in go.mod
  (cd "$1" && go list -m -f '{{.Version}}' "$2")
}
k8s_version="$(mod_version "$api_mod" k8s.io/kubernetes)"
etcd_version="$(mod_version "$etcd_mod" go.etcd.io/etcd/server/v3)"
go_version="$(go env GOVERSION)"

cache_root="${APQN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/apqn-operator}"
bin="$cache_root/controlplane/k8s-${k8s_version}_etcd-${etcd_version}_${go_version}/bin"
mkdir -p "$bin"

log() { echo "[controlplane] $*" >&2; }

# Runs a go build, printing one line per 50 compiled packages and a heartbeat every 20 s,
# so a cold build (several minutes) visibly makes progress.
build() { # label module-dir output package ldflags
  local label="$1" dir="$2" out="$3" pkg="$4" ldflags="$5"
  if [[ -x "$out" ]]; then log "$label: present ($out)"; return 0; fi
  log "$label: building $pkg (first time only; this takes several minutes)"
  local start=$SECONDS tmp="$out.tmp.$$"
  (
    while sleep 20; do log "$label: still building… $((SECONDS - start)) s"; done
  ) &
  local ticker=$!
  local rc=0
  (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg" 2>&1) |
    awk -v label="$label" '
      /^(go: |#|.*\.go:[0-9]+)/ { print "[controlplane] " label ": " $0 > "/dev/stderr"; next }
      { n++; if (n % 50 == 0) printf("[controlplane] %s: %d packages compiled\n", label, n) > "/dev/stderr" }
    ' || true
  rc=${PIPESTATUS[0]}
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [[ ! -x "$tmp" ]]; then log "$label: build failed"; return 1; fi
  mv -f "$tmp" "$out"
  log "$label: built in $((SECONDS - start)) s"
}

k8s_semver="${k8s_version#v}"
k8s_major="${k8s_semver%%.*}"
k8s_minor="$(echo "$k8s_semver" | cut -d. -f2)"
vpkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
ldflags="-s -w"
for p in "${vpkgs[@]}"; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=$k8s_major -X $p.gitMinor=$k8s_minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

build etcd "$etcd_mod" "$bin/etcd" go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver "$api_mod" "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
build kubectl "$api_mod" "$bin/kubectl" k8s.io/kubernetes/cmd/kubectl "$ldflags"
build kube-scheduler "$api_mod" "$bin/kube-scheduler" k8s.io/kubernetes/cmd/kube-scheduler "$ldflags"

log "ready: $bin"
echo "$bin"
