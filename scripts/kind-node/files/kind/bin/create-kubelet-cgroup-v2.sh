#!/bin/sh
# cgroup v2: kubelet needs every controller of the root in the subtree_control of its own cgroups.
set -eu
delegate() { sed -e 's/ / +/g' -e 's/^/+/' <"/sys/fs/cgroup/$1/cgroup.controllers" >"/sys/fs/cgroup/$1/cgroup.subtree_control"; }
delegate /
for group in kubelet kubelet.slice; do
  mkdir -p "/sys/fs/cgroup/$group"
  delegate "/$group"
done
