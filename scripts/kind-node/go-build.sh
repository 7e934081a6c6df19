# Go builds for the node image: each function builds one part into "$1" (a directory it creates), from the Go
# module proxy, static (CGO_ENABLED=0). Sourced by scripts/kind-node-image.sh.

# Kubernetes' own go.mod replaces its staging modules with ./staging paths, so `go install k8s.io/kubernetes/...@v`
# is refused; a wrapper module that pins each staging module to its published v0.X.Y builds the commands instead.
build_kubernetes() {
  local out=$1 version=$2 work
  work=$(mktemp -d)
  local minor=${version#v1.}; minor=${minor%%.*}
  local staging="v0.${version#v1.}"
  local mod; mod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module restate-dev.local/kind-node/kubernetes"
    sed -n 's/^go \(.*\)/go \1/p; s/^godebug \(.*\)/godebug \1/p' "$mod"
    echo "require k8s.io/kubernetes $version"
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$mod"
    echo ")"
  } >"$work/go.mod"
  local pkg=k8s.io/component-base/version cgo=k8s.io/client-go/pkg/version ld="-s -w"
  for p in $pkg $cgo; do
    ld="$ld -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld="$ld -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$out"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -tags selinux,notest -ldflags "$ld" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$work"
}

# etcd's server module also replaces its sibling modules with paths; the same wrapper trick.
build_etcd() {
  local out=$1 version=$2 work mod
  work=$(mktemp -d)
  mod=$(go mod download -json "go.etcd.io/etcd/server/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module restate-dev.local/kind-node/etcd"
    sed -n 's/^go \(.*\)/go \1/p' "$mod"
    echo "require go.etcd.io/etcd/server/v3 $version"
    echo "replace ("
    sed -n 's#^\t\(go.etcd.io/etcd/[a-z0-9/]*\) => \.\./.*#\t\1 => \1 '"$version"'#p' "$mod"
    echo ")"
  } >"$work/go.mod"
  mkdir -p "$out"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$work"
}

# A module whose commands build with plain `go install` (no replace directives in the way).
build_module() {
  local out=$1; shift
  mkdir -p "$out"
  CGO_ENABLED=0 GOBIN="$out" go install -trimpath -ldflags "-s -w" "$@"
}

# pause is C: kubeadm's sandbox image is this one static binary.
build_pause() {
  local out=$1 k8s_version=$2 dir
  dir=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p "$out"
  gcc -Os -static -DVERSION="\"restate-dev\"" -o "$out/pause" "$dir/build/pause/linux/pause.c"
  strip "$out/pause"
}

# The remaining parts, each a plain `go install` of pinned modules.
build_containerd() {
  local v=$2 m=github.com/containerd/containerd/v2
  CGO_ENABLED=0 GOBIN="$1" go install -trimpath -ldflags "-s -w -X $m/version.Version=$v" \
    "$m/cmd/containerd@$v" "$m/cmd/ctr@$v" "$m/cmd/containerd-shim-runc-v2@$v"
}
build_cni_plugins() {
  local m=github.com/containernetworking/plugins/plugins
  build_module "$1" "$m/ipam/host-local@$2" "$m/main/loopback@$2" "$m/main/ptp@$2" "$m/meta/portmap@$2"
}
build_crictl() { build_module "$1" "sigs.k8s.io/cri-tools/cmd/crictl@$2"; }
build_coredns() { build_module "$1" "github.com/coredns/coredns@$2"; }
build_local_path_provisioner() { build_module "$1" "github.com/rancher/local-path-provisioner@$2"; }
build_kind() { build_module "$1" "sigs.k8s.io/kind@$2"; }
