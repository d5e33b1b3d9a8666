# Shared by image/build.sh and image/test.sh (sourced, POSIX sh).
log() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }
now() { date +%s; }
elapsed() { echo "$(( $(now) - $1 ))s"; }

# Install the image tools that are missing (idempotent; root). Bookworm's
# qemu-system-arm 7.2 conflicts with a newer qemu-utils from backports that
# machines of this kind have preinstalled: ask for bookworm's qemu-utils on the
# same line (a downgrade) so apt does not remove it.
image_deps() {
  missing=""
  for pair in mmdebstrap:mmdebstrap mcopy:mtools mkfs.vfat:dosfstools sfdisk:fdisk \
              qemu-system-aarch64:qemu-system-arm arch-test:arch-test mke2fs:e2fsprogs \
              xz:xz-utils curl:curl qemu-aarch64-static:qemu-user-static file:file \
              ssh:openssh-client; do
    PATH=$PATH:/usr/sbin:/sbin command -v "${pair%%:*}" >/dev/null || missing="$missing ${pair#*:}"
  done
  [ -n "$missing" ] || return 0
  [ "$(id -u)" = 0 ] || die "missing tools:$missing (run as root to install them)"
  case "$missing" in *qemu-system-arm*) missing="$missing qemu-utils/bookworm" ;; esac
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends --allow-downgrades $missing >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends --allow-downgrades $missing >/dev/null; } \
    || die "apt-get install$missing failed"
}

# mmdebstrap runs arm64 maintainer scripts through qemu-user: register it with
# binfmt_misc by hand (PID 1 here is not systemd). The F flag makes it work
# inside chroots. Idempotent.
register_binfmt() {
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
}
