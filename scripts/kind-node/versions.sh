# Pinned versions of everything the locally built kind node image is made of (scripts/kind-node-image.sh).
# Kubernetes is the script's parameter; the rest follows kind v0.33.0's base image and node build, except where
# README.md ("What is verified where") names a stand-in.
KIND_VERSION=v0.33.0
CONTAINERD_VERSION=v2.3.4
CRICTL_VERSION=v1.37.0
CNI_PLUGINS_VERSION=v1.9.1
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
# Debian suite of the node's rootfs, as kind's base image (debian:trixie-slim).
NODE_SUITE=trixie
# The images the node's manifests name, as kind v0.33.0 names them.
KINDNET_IMAGE=docker.io/kindest/kindnetd:v20260820-69b56db7
STORAGE_PROVISIONER_IMAGE=docker.io/kindest/local-path-provisioner:v20260820-69b56db7
STORAGE_HELPER_IMAGE=docker.io/kindest/local-path-helper:v20260131-7181c60a
