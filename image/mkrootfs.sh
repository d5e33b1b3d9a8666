#!/bin/sh
# Build the base Debian bookworm arm64 root file system of the appliance image
# as a tarball (the slow, cacheable part of `make image`: ~5 min under qemu-user).
#
# Usage: image/mkrootfs.sh OUT.tar
#
# Everything that decides the tarball's content is in this file (package list,
# dpkg excludes, hooks), so image/build.sh caches the tarball under the hash of
# this file. The per-build part (binary, units, configuration, partitions) is
# image/build.sh; image/README.md says why each package is here.
#
# Needs: root, mmdebstrap, arch-test, qemu-user-static with binfmt_misc
# registered for aarch64 (image/build.sh does that).
set -eu
OUT=$1
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Keep this list minimal; every entry is explained in image/README.md.
PACKAGES="
systemd-sysv udev kmod
linux-image-arm64 raspi-firmware initramfs-tools
systemd-timesyncd systemd-resolved
e2fsprogs fdisk dosfstools
wpasupplicant firmware-brcm80211 wireless-regdb
dropbear-bin
iproute2
usr-is-merged
"
INCLUDE=$(echo $PACKAGES | tr ' ' ',')

# A small initramfs: only the modules that find the root file system on a Pi's
# SD card (or on qemu's virtio disk), gzip. Debian's default (MODULES=most,
# zstd) makes a 36 MB initrd and takes ~15 min per run under qemu-user.
ESSENTIAL_HOOK='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d";
printf "MODULES=list\nCOMPRESS=gzip\n" > "$1/etc/initramfs-tools/conf.d/small.conf";
printf "%s\n" ext4 vfat nls_cp437 nls_ascii mmc_block sdhci_iproc bcm2835 bcm2835_dma virtio_pci virtio_blk \
  > "$1/usr/share/initramfs-tools/modules.d/homeline"'

# raspi-firmware writes config.txt/cmdline.txt and copies kernel, initrd and the
# DTBs to /boot/firmware (it runs for real only with DEB_MAINT_PARAMS=configure).
FIRMWARE_HOOK='sed -i "s|^#\?ROOTPART=.*|ROOTPART=LABEL=RASPIROOT|" "$1/etc/default/raspi-firmware";
chroot "$1" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware'

# No password anywhere: root gets "*" (no password can match; not "!" which
# dropbear treats as a locked account and refuses even keys). Homeline runs as
# a static system user so its data can live on its own partition.
ACCOUNTS_HOOK='chroot "$1" usermod -p "*" root;
chroot "$1" useradd --system --user-group --no-create-home --home-dir /var/lib/homeline --shell /usr/sbin/nologin homeline'

# mmdebstrap installs usrmerge (and the perl it needs) to merge /usr; with
# usr-is-merged installed it can go again (~50 MB); nothing else needs perl.
PURGE_HOOK='chroot "$1" dpkg --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36 libperl5.36 libgdbm-compat4'

mmdebstrap --architectures=arm64 --variant=minbase \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --dpkgopt='path-exclude=/usr/share/bash-completion/*' \
  --dpkgopt='path-exclude=/usr/share/zsh/*' \
  --dpkgopt='path-exclude=/usr/lib/*/gconv/*.so' \
  --include="$INCLUDE" \
  --essential-hook="$ESSENTIAL_HOOK" \
  --customize-hook="$FIRMWARE_HOOK" \
  --customize-hook="$ACCOUNTS_HOOK" \
  --customize-hook="$PURGE_HOOK" \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  bookworm "$OUT" \
  "deb $MIRROR bookworm main non-free-firmware" \
  "deb $MIRROR bookworm-updates main non-free-firmware" \
  "deb $SECURITY bookworm-security main non-free-firmware"
