#!/bin/sh
# Build the flashable Raspberry Pi image: target/image/homeline-<version>-rpi-arm64.img.xz
#
# Usage (root): image/build.sh [path/to/aarch64/homeline]
#   default binary: ${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-musl/release/homeline
#   (`make image` builds it with image/cross.sh first)
#
# Steps: the base root file system (image/mkrootfs.sh, cached under the hash of
# that script), then in seconds: the binary, its unit and image/files/ on top,
# kernel modules a Pi never needs removed, and the three partitions assembled in
# userspace (mkfs.vfat + mtools, mke2fs -d, sfdisk, dd: no loop device, no
# mount). Layout and every choice: image/README.md.
#
# Knobs: XZ_LEVEL (default 6), BOOT_MB (256), DATA_MB (128).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. image/lib.sh

T0=$(now)
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=${1:-$TARGET_DIR/aarch64-unknown-linux-musl/release/homeline}
OUT=target/image
CACHE=$OUT/cache
WORK=$OUT/work
IMG=$OUT/homeline-$VERSION-rpi-arm64.img
BOOT_MB=${BOOT_MB:-256}
DATA_MB=${DATA_MB:-128}
XZ_LEVEL=${XZ_LEVEL:-6}

[ -f "$BIN" ] || die "no binary at $BIN (run: image/cross.sh aarch64-unknown-linux-musl)"
file -b "$BIN" | grep -q 'ARM aarch64' || die "$BIN is not an aarch64 binary"
image_deps
register_binfmt

# ---------------------------------------------------------------- 1. base rootfs (cached)
HASH=$(sha256sum image/mkrootfs.sh | cut -c1-16)
BASE=$CACHE/rootfs-$HASH.tar
mkdir -p "$CACHE"
if [ -f "$BASE" ]; then
  log "base rootfs: cached $BASE"
else
  t=$(now)
  log "base rootfs: building $BASE (mmdebstrap under qemu-user, ~5 min)"
  # (mmdebstrap picks the output format from the name: keep the .tar suffix)
  rm -f "$CACHE/partial-$HASH.tar"
  image/mkrootfs.sh "$CACHE/partial-$HASH.tar"
  mv "$CACHE/partial-$HASH.tar" "$BASE"
  find "$CACHE" -name '*.tar' ! -name "rootfs-$HASH.tar" -delete
  log "base rootfs built in $(elapsed "$t")"
fi

# ---------------------------------------------------------------- 2. this build's root file system
t=$(now)
rm -rf "$WORK"
R=$WORK/rootfs
D=$WORK/data
mkdir -p "$R" "$D"
tar -C "$R" --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE"
KVER=$(ls "$R/usr/lib/modules" | head -1)
[ -n "$KVER" ] || die "no kernel modules in the base rootfs"

# image/files/ (configuration, helper scripts, image-only units) owned by root.
tar -C image/files --owner=0 --group=0 --numeric-owner -cf - . | tar -C "$R" -xpf -
install -m 0755 "$BIN" "$R/usr/local/bin/homeline"
install -m 0644 systemd/homeline.service "$R/etc/systemd/system/homeline.service"

enable() { # enable UNIT TARGET: what `systemctl enable` would link
  mkdir -p "$R/etc/systemd/system/$2.wants"
  src=/etc/systemd/system/$1
  [ -e "$R$src" ] || src=/lib/systemd/system/$1
  [ -e "$R$src" ] || die "unit $1 not in the rootfs"
  ln -sfn "$src" "$R/etc/systemd/system/$2.wants/$1"
}
enable homeline.service multi-user.target
enable homeline-grow-data.service local-fs.target
enable homeline-ssh.service multi-user.target
enable systemd-networkd.service multi-user.target
enable systemd-networkd.socket sockets.target
enable systemd-resolved.service multi-user.target
enable systemd-timesyncd.service sysinit.target
# Timers that need a writable root or do nothing here: apt's (no package lists
# on the image; it is replaced whole), dpkg's database backup, e2scrub (LVM only).
for u in timers.target.wants/apt-daily.timer timers.target.wants/apt-daily-upgrade.timer \
         timers.target.wants/dpkg-db-backup.timer timers.target.wants/e2scrub_all.timer \
         multi-user.target.wants/e2scrub_reap.service; do
  rm -f "$R/etc/systemd/system/$u"
done
# wpasupplicant's own D-Bus service (no D-Bus here); homeline-wifi@ runs it instead.
rm -f "$R/etc/systemd/system/multi-user.target.wants/wpa_supplicant.service" \
      "$R/etc/systemd/system/dbus-fi.w1.wpa_supplicant1.service"
# Resolver: resolved's stub, kept current in /run (the root is read-only).
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
# A fresh machine id each boot, in RAM (the root is read-only; see README).
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
# root's SSH keys live on the data partition.
rm -rf "$R/root/.ssh"
ln -s /data/system/ssh "$R/root/.ssh"

# Kernel modules a Pi never needs (README "What was trimmed"), then depmod.
M=$R/usr/lib/modules/$KVER/kernel
before=$(du -sm "$M" | cut -f1)
for d in drivers/infiniband drivers/isdn drivers/atm \
         drivers/target drivers/nvme drivers/ata drivers/md drivers/gpu/drm/amd drivers/gpu/drm/nouveau \
         drivers/gpu/drm/radeon drivers/gpu/drm/msm drivers/gpu/drm/i915 drivers/gpu/drm/tegra \
         drivers/gpu/drm/rockchip drivers/gpu/drm/meson drivers/gpu/drm/sun4i drivers/gpu/drm/exynos \
         drivers/gpu/drm/etnaviv drivers/gpu/drm/lima drivers/gpu/drm/panfrost drivers/gpu/drm/imx \
         drivers/gpu/drm/mediatek drivers/gpu/drm/hisilicon drivers/gpu/drm/nouveau drivers/gpu/drm/qxl \
         drivers/gpu/drm/virtio drivers/gpu/drm/ast drivers/gpu/drm/mgag200 drivers/gpu/drm/bridge \
         drivers/gpu/drm/panel drivers/gpu/drm/tiny drivers/gpu/drm/xlnx drivers/gpu/drm/arm \
         drivers/net/wireless/ath drivers/net/wireless/intel drivers/net/wireless/mediatek \
         drivers/net/wireless/realtek drivers/net/wireless/marvell drivers/net/wireless/ti \
         drivers/net/wireless/ralink drivers/net/wireless/zydas drivers/net/wireless/quantenna \
         drivers/net/wireless/intersil drivers/net/wireless/atmel drivers/net/wireless/rsi \
         drivers/net/wireless/st drivers/net/wireless/microchip drivers/net/wireless/purelifi \
         drivers/net/ethernet/mellanox drivers/net/ethernet/intel drivers/net/ethernet/chelsio \
         drivers/net/ethernet/qlogic drivers/net/ethernet/marvell drivers/net/ethernet/cavium \
         drivers/net/ethernet/amazon drivers/net/ethernet/huawei drivers/net/ethernet/hisilicon \
         drivers/net/ethernet/emulex drivers/net/ethernet/sfc drivers/net/ethernet/netronome \
         drivers/net/ethernet/freescale drivers/net/ethernet/mediatek drivers/net/ethernet/qualcomm \
         drivers/net/ethernet/stmicro drivers/net/ethernet/amd drivers/net/ethernet/aquantia \
         drivers/net/ethernet/atheros drivers/net/ethernet/realtek drivers/net/ethernet/sun \
         drivers/net/ethernet/ti drivers/net/ethernet/socionext drivers/net/ethernet/pensando \
         drivers/net/ethernet/microsoft drivers/net/ethernet/google drivers/net/ethernet/engleder \
         drivers/net/can drivers/net/wwan drivers/net/ipa drivers/net/dsa drivers/net/hamradio \
         drivers/net/ieee802154 drivers/bluetooth net/bluetooth drivers/iio drivers/thunderbolt \
         drivers/input/touchscreen drivers/input/joystick drivers/input/tablet drivers/hid \
         drivers/video/fbdev drivers/firewire drivers/pcmcia drivers/fpga drivers/remoteproc \
         drivers/crypto/caam drivers/crypto/hisilicon drivers/crypto/marvell drivers/crypto/qat \
         drivers/net/ethernet/broadcom/bnxt drivers/net/ethernet/broadcom/bnx2x \
         sound/soc/codecs sound/soc/sof sound/soc/intel sound/soc/qcom sound/soc/fsl sound/soc/mediatek \
         sound/soc/rockchip sound/soc/sunxi sound/soc/tegra sound/soc/meson sound/soc/amd sound/pci \
         sound/usb sound/firewire net/mac802154 net/ieee802154 net/can net/ceph net/rds net/sunrpc \
         fs/nfs fs/nfsd fs/ceph fs/cifs fs/smb fs/ocfs2 fs/gfs2 fs/btrfs fs/xfs fs/jfs fs/f2fs \
         fs/ubifs fs/nilfs2 fs/reiserfs fs/dlm fs/afs fs/9p fs/orangefs fs/coda; do
  rm -rf "${M:?}/$d"
done
# drivers/media: all but HDMI-CEC and remote-control core, which vc4 (HDMI) needs.
find "$M/drivers/media" -mindepth 1 -maxdepth 1 ! -name cec ! -name rc -exec rm -rf {} +
find "$M/drivers/media/rc" -mindepth 1 -maxdepth 1 ! -name rc-core.ko -exec rm -rf {} +
# drivers/staging: all but vc04_services (the Pi's bcm2835 audio lives there).
find "$M/drivers/staging" -mindepth 1 -maxdepth 1 ! -name vc04_services -exec rm -rf {} +
# A module whose dependency went with a removed directory cannot load: remove
# it too (Debian's own modules.dep, from before the trim, says who needs whom),
# and stop if that would take a module the Pi needs.
DEP=$ROOT/$R/usr/lib/modules/$KVER/modules.dep
while :; do
  orphans=$(cd "$R/usr/lib/modules/$KVER" && awk -F': *' '{ n = split($2, d, " "); for (i = 1; i <= n; i++) print $1, d[i] }' "$DEP" |
    while read -r mod dep; do [ -e "$mod" ] && [ ! -e "$dep" ] && echo "$mod"; done | sort -u)
  [ -n "$orphans" ] || break
  for o in $orphans; do rm -f "$R/usr/lib/modules/$KVER/$o"; done
  log "also removed (their dependencies are gone): $(echo $orphans | xargs -n1 basename | tr '\n' ' ')"
done
for need in vc4 brcmfmac bcm2835_wdt smsc95xx lan78xx genet i6300esb sdhci-iproc bcm2835 snd-bcm2835 \
            bcm2835-rng iproc-rng200 raspberrypi-cpufreq bcm2835_thermal cfg80211 virtio_net; do
  find "$M" -name "$need.ko*" | grep -q . || die "kernel module $need missing after the trim"
done
chroot "$R" /sbin/depmod -a "$KVER"
after=$(du -sm "$M" | cut -f1)
log "kernel modules: $before MiB -> $after MiB"
# Wi-Fi firmware: only the Pi's chips (43430: Pi 3 B; 43455: Pi 3 B+/A+, 4,
# 400, CM4; 43436 for the Zero 2 W, if the package has it: bookworm's has not).
FW=$R/usr/lib/firmware
fw_before=$(du -sm "$FW" | cut -f1)
find "$FW/brcm" -mindepth 1 ! -name 'brcmfmac43430-*' ! -name 'brcmfmac43455-*' ! -name 'brcmfmac43436*' -delete
find "$FW/cypress" -mindepth 1 ! -name 'cyfmac43430-*' ! -name 'cyfmac43455-*' ! -name 'cyfmac43436*' -delete
find "$FW" -xtype l -delete
for f in brcm/brcmfmac43430-sdio.bin brcm/brcmfmac43455-sdio.bin brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt; do
  [ -e "$FW/$f" ] || die "Wi-Fi firmware $f missing after the trim"
done
log "firmware: $fw_before MiB -> $(du -sm "$FW" | cut -f1) MiB"
# The Pi boots kernel and initrd from the boot partition; the copies in /boot
# would only take room on the system partition.
rm -f "$R"/boot/vmlinuz-* "$R"/boot/initrd.img-* "$R"/boot/System.map-* "$R"/vmlinuz* "$R"/initrd.img*

# cmdline.txt: the root read-only; the Pi's console on the serial pins and HDMI.
sed -i -e 's/\(^\| \)rw\( \|$\)/\1ro\2/' "$R/boot/firmware/cmdline.txt"
grep -qw ro "$R/boot/firmware/cmdline.txt" || sed -i 's/$/ ro/' "$R/boot/firmware/cmdline.txt"
grep -q 'console=ttyS1' "$R/boot/firmware/cmdline.txt" || sed -i 's/console=tty0/console=ttyS1,115200 console=tty0/' "$R/boot/firmware/cmdline.txt"
log "cmdline.txt: $(cat "$R/boot/firmware/cmdline.txt")"

# The data partition's first content: Homeline's directory, systemd's state
# (/var/lib/systemd is a bind mount of /data/system/systemd), SSH's directory.
HUID=$(awk -F: '$1 == "homeline" {print $3 ":" $4}' "$R/etc/passwd")
[ -n "$HUID" ] || die "no homeline user in the rootfs"
install -d -m 0700 -o "${HUID%:*}" -g "${HUID#*:}" "$D/homeline"
install -d -m 0755 "$D/system"
install -d -m 0700 "$D/system/ssh"
cp -a "$R/var/lib/systemd" "$D/system/systemd"
find "$R/var/lib/systemd" -mindepth 1 -delete
install -d -m 0755 "$R/data" "$R/var/lib/homeline"
log "root file system ready in $(elapsed "$t")"

# ---------------------------------------------------------------- 3. partitions and image
t=$(now)
ROOT_MB=$(( $(du -sm "$R" | cut -f1) * 115 / 100 + 64 ))
mkfs.vfat -F 32 -n RASPIFIRM -C "$WORK/boot.vfat" $((BOOT_MB * 1024)) >/dev/null
mcopy -s -i "$WORK/boot.vfat" "$R"/boot/firmware/* ::/
mkdir "$WORK/fw"
mv "$R"/boot/firmware/* "$WORK/fw/"            # /boot/firmware stays an empty mount point
mke2fs -q -t ext4 -b 4096 -L RASPIROOT -d "$R" "$WORK/root.ext4" "${ROOT_MB}M" >/dev/null
# 4 KiB blocks and room in the group descriptor table for growth to 512 GiB
# online (mke2fs would pick 1 KiB blocks for a file system this small).
mke2fs -q -t ext4 -b 4096 -m 1 -E resize=134217728 -L HOMEDATA -d "$D" "$WORK/data.ext4" "${DATA_MB}M" >/dev/null
rm -f "$IMG"
truncate -s $((4 + BOOT_MB + ROOT_MB + DATA_MB))M "$IMG"
printf 'label: dos\nstart=4MiB, size=%sMiB, type=c, bootable\nstart=%sMiB, size=%sMiB, type=83\nstart=%sMiB, size=%sMiB, type=83\n' \
  "$BOOT_MB" $((4 + BOOT_MB)) "$ROOT_MB" $((4 + BOOT_MB + ROOT_MB)) "$DATA_MB" | sfdisk -q "$IMG"
dd if="$WORK/boot.vfat" of="$IMG" bs=1M seek=4 conv=notrunc,sparse status=none
dd if="$WORK/root.ext4" of="$IMG" bs=1M seek=$((4 + BOOT_MB)) conv=notrunc,sparse status=none
dd if="$WORK/data.ext4" of="$IMG" bs=1M seek=$((4 + BOOT_MB + ROOT_MB)) conv=notrunc,sparse status=none
rm -rf "$WORK"
log "image assembled in $(elapsed "$t"): boot ${BOOT_MB} MiB, system ${ROOT_MB} MiB, data ${DATA_MB} MiB"

t=$(now)
rm -f "$IMG.xz"
RAW_MB=$(( $(stat -c %s "$IMG") / 1048576 ))
xz -T2 -"$XZ_LEVEL" "$IMG"
log "xz -$XZ_LEVEL in $(elapsed "$t")"
echo "image: $IMG.xz"
echo "size: $(stat -c %s "$IMG.xz") bytes compressed ($(( $(stat -c %s "$IMG.xz") / 1048576 )) MiB), $RAW_MB MiB raw"
echo "build time: $(elapsed "$T0")"
