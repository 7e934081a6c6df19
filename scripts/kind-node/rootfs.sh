# The node's Debian rootfs, as kind's base image has it (images/base/Dockerfile): systemd as PID 1, the network and
# mount tools kubelet and kube-proxy use, and runc from Debian. Sourced by scripts/kind-node-image.sh.
ROOTFS_PACKAGES=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,ca-certificates,curl,jq,procps,bash,runc,e2fsprogs

# build_rootfs SUITE TARBALL: debootstrap's minbase plus ROOTFS_PACKAGES, trimmed as kind trims its base.
build_rootfs() {
  local suite=$1 tarball=$2 dir
  dir=$(mktemp -d)
  debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$suite" "$dir" http://deb.debian.org/debian >&2
  # systemd must not start what a container cannot run, nor wait for udev or getty (as kind's Dockerfile does).
  find "$dir/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$dir"/lib/systemd/system/multi-user.target.wants/* "$dir"/etc/systemd/system/*.wants/* \
    "$dir"/lib/systemd/system/local-fs.target.wants/* "$dir"/lib/systemd/system/sockets.target.wants/*udev* \
    "$dir"/lib/systemd/system/sockets.target.wants/*initctl* "$dir"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$dir/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$dir/sbin/init"
  chroot "$dir" systemctl mask systemd-binfmt.service >/dev/null 2>&1 || true
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man
  tar -C "$dir" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"
}
