#!/usr/bin/env bash
# Builds a kind-compatible node image here, where no registry can be reached: kind's layout (its images/base and
# pkg/build/nodeimage), made from the Go module proxy and Debian's packages, every version pinned
# (scripts/kind-node/versions.sh). Every part is cached under $RESTATE_DEV_CACHE (default /var/cache/restate-dev)
# keyed by its version, so a second run only checks; each stage prints its time on stderr. The last stdout line is
# the image reference.
#
#   scripts/kind-node-image.sh [KUBERNETES_VERSION]     (default v1.37.0, the default node image's version)
#   scripts/kind-node-image.sh --kind                   builds the pinned kind CLI instead; prints its path
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/kind-node/versions.sh"
. "$here/kind-node/go-build.sh"
. "$here/kind-node/rootfs.sh"

cache=${RESTATE_DEV_CACHE:-/var/cache/restate-dev}/kind-node
mkdir -p "$cache/bin"
started=$SECONDS
log() { printf '==> [%4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }

# cached DIR BUILDER ARGS...: runs the builder into DIR unless a previous run finished it.
cached() {
  local dir=$1; shift
  if [ -f "$dir/.done" ]; then
    log "cached: ${dir#"$cache"/}"
    return
  fi
  local t=$SECONDS
  log "building ${dir#"$cache"/} (cold)"
  rm -rf "$dir"
  "$@"
  touch "$dir/.done"
  log "built ${dir#"$cache"/} in $((SECONDS - t))s"
}

if [ "${1:-}" = --kind ]; then
  cached "$cache/bin/kind-$KIND_VERSION" build_kind "$cache/bin/kind-$KIND_VERSION" "$KIND_VERSION" >&2
  echo "$cache/bin/kind-$KIND_VERSION/kind"
  exit 0
fi

k8s=${1:-v1.37.0}
[[ "$k8s" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { echo "error: Kubernetes version must look like v1.37.0, not '$k8s'" >&2; exit 2; }
key=$(cat "$here/kind-node-image.sh" "$here"/kind-node/*.sh "$here"/kind-node/standins/* "$here"/kind-node/manifests/* \
  $(find "$here/kind-node/files" -type f | sort) | sha256sum | cut -c1-12)
image="restate-dev.local/kind-node:$k8s-$key"
if docker image inspect "$image" >/dev/null 2>&1; then
  log "node image $image is cached"
  echo "$image"
  exit 0
fi

# 1. Kubernetes first: its kubeadm names the images (and so the etcd, CoreDNS and pause versions) it expects.
kube="$cache/bin/kubernetes-$k8s"
cached "$kube" build_kubernetes "$kube" "$k8s"
mapfile -t wanted < <("$kube/kubeadm" config images list --kubernetes-version "$k8s")
wanted_ref() { printf '%s\n' "${wanted[@]}" | grep "/$1:"; }
tag_of() { wanted_ref "$1" | sed 's/.*://'; }
etcd_tag=$(tag_of etcd) coredns_tag=$(tag_of coredns) pause_tag=$(tag_of pause)
log "kubeadm $k8s expects etcd $etcd_tag, CoreDNS $coredns_tag, pause $pause_tag"
etcd_version=v${etcd_tag%-*}

cached "$cache/bin/etcd-$etcd_version" build_etcd "$cache/bin/etcd-$etcd_version" "$etcd_version"
cached "$cache/bin/coredns-$coredns_tag" build_coredns "$cache/bin/coredns-$coredns_tag" "$coredns_tag"
cached "$cache/bin/pause-$k8s" build_pause "$cache/bin/pause-$k8s" "$k8s"
cached "$cache/bin/containerd-$CONTAINERD_VERSION" build_containerd "$cache/bin/containerd-$CONTAINERD_VERSION" "$CONTAINERD_VERSION"
cached "$cache/bin/crictl-$CRICTL_VERSION" build_crictl "$cache/bin/crictl-$CRICTL_VERSION" "$CRICTL_VERSION"
cached "$cache/bin/cni-$CNI_PLUGINS_VERSION" build_cni_plugins "$cache/bin/cni-$CNI_PLUGINS_VERSION" "$CNI_PLUGINS_VERSION"
lpp="$cache/bin/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION"
cached "$lpp" build_local_path_provisioner "$lpp" "$LOCAL_PATH_PROVISIONER_VERSION"

# 2. The Debian rootfs, as a Docker image: the node's base, and the base of the parts that need a shell or iptables.
rootfs_key=$(cat "$here/kind-node/rootfs.sh" | sha256sum | cut -c1-12)
rootfs="$cache/rootfs-$NODE_SUITE-$rootfs_key.tar"
rootfs_image="restate-dev.local/kind-node-rootfs:$NODE_SUITE-$rootfs_key"
if [ ! -f "$rootfs" ]; then
  t=$SECONDS
  log "debootstrap $NODE_SUITE (cold)"
  build_rootfs "$NODE_SUITE" "$rootfs"
  log "rootfs built in $((SECONDS - t))s"
fi
if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  docker import "$rootfs" "$rootfs_image" >/dev/null
fi

# quiet CMD...: runs CMD, showing its output only when it fails (docker build and ctr are chatty on stderr).
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "error: failed: $*" >&2
    return 1
  fi
}

ctx=$(mktemp -d)
builder=""
cleanup() {
  rm -rf "$ctx"
  [ -z "$builder" ] || docker rm -f -v "$builder" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# build_image REF BASE FILE:DEST... : a one-layer image of BASE plus the files, labelled as a test fixture.
part_prefix=restate-dev.local/kind-node-part
build_image() {
  local ref=$1 base=$2 dir; shift 2
  dir=$(mktemp -d -p "$ctx")
  {
    echo "FROM $base"
    local spec i=0
    for spec in "$@"; do
      cp "${spec%%:*}" "$dir/f$i"
      echo "COPY f$i ${spec#*:}"
      i=$((i + 1))
    done
    echo 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'LABEL dev.restate.test-fixture=kind-node'
  } >"$dir/Dockerfile"
  quiet docker build -q -t "$ref" "$dir"
}

# 3. The images kubeadm and the node's manifests name, built under private names (so that no image of the user's
#    is retagged) and renamed inside the node's containerd.
t=$SECONDS
declare -A parts=()
# component NAME BASE FILE:DEST NODE_REFERENCE: one image, and the name the node's containerd gives it.
component() {
  build_image "$part_prefix/$1:$k8s-$key" "$2" "$3"
  parts["$part_prefix/$1:$k8s-$key"]=$4
}
for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
  component "$cmd" scratch "$kube/$cmd:/usr/local/bin/$cmd" "$(wanted_ref "$cmd")"
done
# kube-proxy programs iptables and conntrack, so it gets the rootfs that has them, as upstream's distroless-iptables.
component kube-proxy "$rootfs_image" "$kube/kube-proxy:/usr/local/bin/kube-proxy" "$(wanted_ref kube-proxy)"
component etcd scratch "$cache/bin/etcd-$etcd_version/etcd:/usr/local/bin/etcd" "$(wanted_ref etcd)"
component coredns scratch "$cache/bin/coredns-$coredns_tag/coredns:/coredns" "$(wanted_ref coredns)"
component pause scratch "$cache/bin/pause-$k8s/pause:/pause" "$(wanted_ref pause)"
component kindnetd "$rootfs_image" "$here/kind-node/standins/kindnetd:/bin/kindnetd" "$KINDNET_IMAGE"
component local-path-provisioner scratch "$lpp/local-path-provisioner:/usr/local/bin/local-path-provisioner" \
  "$STORAGE_PROVISIONER_IMAGE"
# the helper pods run `sh` scripts that create and remove volume directories
docker tag "$rootfs_image" "$part_prefix/local-path-helper:$k8s-$key"
parts["$part_prefix/local-path-helper:$k8s-$key"]=$STORAGE_HELPER_IMAGE
# ENTRYPOINTs, as the upstream images have them (kubeadm's manifests pass only arguments to some)
for ep in coredns:/coredns pause:/pause kindnetd:/bin/kindnetd; do
  echo -e "FROM $part_prefix/${ep%%:*}:$k8s-$key\nENTRYPOINT [\"${ep#*:}\"]" >"$ctx/Dockerfile.entrypoint"
  quiet docker build -q -t "$part_prefix/${ep%%:*}:$k8s-$key" -f "$ctx/Dockerfile.entrypoint" "$ctx"
done
log "component images built in $((SECONDS - t))s"

# 4. The node's own files on the rootfs: kind's base layout, then the node build's additions.
t=$SECONDS
node="$ctx/node"
mkdir -p "$node/files/usr/bin" "$node/files/usr/local/bin" "$node/files/opt/cni/bin" "$node/files/kind/manifests" \
  "$node/files/etc/kubernetes/manifests"
cp -a "$here/kind-node/files/." "$node/files/"
sed -i "s#@SANDBOX_IMAGE@#$(wanted_ref pause)#" "$node/files/etc/containerd/config.toml"
cp "$kube/kubeadm" "$kube/kubelet" "$kube/kubectl" "$node/files/usr/bin/"
cp "$cache/bin/containerd-$CONTAINERD_VERSION"/{containerd,ctr,containerd-shim-runc-v2} "$cache/bin/crictl-$CRICTL_VERSION/crictl" \
  "$node/files/usr/local/bin/"
cp "$cache/bin/cni-$CNI_PLUGINS_VERSION"/{host-local,loopback,ptp,portmap} "$node/files/opt/cni/bin/"
echo "$k8s" >"$node/files/kind/version"
for m in default-cni default-storage; do
  sed -e "s#@KINDNET_IMAGE@#$KINDNET_IMAGE#; s#@STORAGE_PROVISIONER_IMAGE@#$STORAGE_PROVISIONER_IMAGE#" \
    -e "s#@STORAGE_HELPER_IMAGE@#$STORAGE_HELPER_IMAGE#" "$here/kind-node/manifests/$m.yaml" >"$node/files/kind/manifests/$m.yaml"
done
cat >"$node/Dockerfile" <<EOF
FROM $rootfs_image
COPY files/ /
RUN systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1 \\
 && systemctl mask systemd-binfmt.service >/dev/null 2>&1 \\
 && chmod 0755 /usr/local/bin/entrypoint /kind/bin/*.sh
LABEL dev.restate.test-fixture=kind-node
EOF
base="restate-dev.local/kind-node-base:$k8s-$key"
quiet docker build -q -t "$base" "$node"
log "node base built in $((SECONDS - t))s"

# 5. The images go into the node's containerd as kind's node build puts them: pinned, not unpacked.
t=$SECONDS
builder="restate-dev-node-build-$$"
# containerd is the build container's PID 1 behind a shell that, on `docker stop`, stops it and removes its
# runtime state, so that the committed image holds only its content store.
docker run -d --name "$builder" --privileged --entrypoint /bin/sh "$base" -c \
  'mkdir -p /run/containerd; containerd & pid=$!; trap "kill \$pid; wait \$pid; rm -rf /run/containerd" TERM; wait $pid' >/dev/null
for _ in $(seq 1 100); do docker exec "$builder" ctr version >/dev/null 2>&1 && break; sleep 0.1; done
in_node() { quiet docker exec "$builder" ctr --namespace=k8s.io images "$@"; }
for private in "${!parts[@]}"; do
  docker save "$private" | quiet docker exec -i "$builder" ctr --namespace=k8s.io images import \
    --label=io.cri-containerd.pinned=pinned --no-unpack --digests -
  in_node tag --force "$private" "${parts[$private]}"
  in_node label "${parts[$private]}" io.cri-containerd.pinned=pinned
  in_node rm "$private"
done
# --digests also names each import by date and digest; only the names kubeadm and the manifests use stay.
docker exec "$builder" ctr --namespace=k8s.io images ls -q 2>/dev/null | grep '^import-' | while read -r ref; do in_node rm "$ref"; done
quiet docker stop -t 30 "$builder"
# `docker commit --change` takes no STOPSIGNAL (Docker 20.10), so the image's settings are a last build step.
committed="$base-committed"
quiet docker commit "$builder" "$committed"
printf '%s\n' "FROM $committed" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
  'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' 'CMD []' >"$ctx/Dockerfile.node"
quiet docker build -q -t "$image" -f "$ctx/Dockerfile.node" "$ctx"
log "images imported and node image committed in $((SECONDS - t))s"
for private in "${!parts[@]}"; do docker rmi "$private" >/dev/null 2>&1 || true; done
docker rmi "$committed" "$base" >/dev/null 2>&1 || true
# This version's images under other keys (earlier scripts, or builds that stopped half-way) are superseded; one
# that a container still uses is refused by `docker rmi` and stays.
superseded=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep "^restate-dev\.local/kind-node[-a-z/]*:$k8s-" |
  grep -v -- "-$key\$" || true)
removed=0
# a second pass for images that the first pass's removals had still depended on
for _pass in 1 2; do
  for old in $superseded; do docker rmi "$old" >/dev/null 2>&1 && removed=$((removed + 1)); done
done
[ "$removed" = 0 ] || log "removed $removed superseded images of $k8s"
log "node image $image ready ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%d MB", $1 / 1e6 }'))"
echo "$image"
