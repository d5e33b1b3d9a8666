#!/bin/sh
# Boot test of the flashable image (make image-test; root), what CI runs after
# `make image`:
#   1. decompress target/image/homeline-<version>-rpi-arm64.img.xz (the file a
#      family flashes) and enlarge the copy (a bigger card) so growth shows;
#   2. boot it under qemu-system-aarch64 -M virt with the kernel and initrd
#      taken from the image's boot partition, user-mode networking forwarding
#      a loopback port to the guest's port 80, and homeline-selftest.service
#      pulled in from the kernel command line (it reports from the inside,
#      measures an idle minute's writes, then powers off);
#   3. from the host: Homeline started, GET /api/health/ready answers 200,
#      GET /api/setup/status says setup is not completed;
#   4. after qemu exits: the partition table shows the data partition filling
#      the enlarged disk, e2fsck -fn / fsck.vfat -n find all three file systems
#      clean.
#   Also: SSH with the key file dropped on the boot partition, password refused.
# Knobs: IMAGE (the .img.xz), TEST_DISK_MB (4096), HTTP_PORT (18080), SSH_PORT (18022),
# BOOT_TIMEOUT (420).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
. image/lib.sh

T0=$(now)
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE=${IMAGE:-target/image/homeline-$VERSION-rpi-arm64.img.xz}
DIR=target/image/test
DISK=$DIR/disk.img
LOG=$DIR/console.log
TEST_DISK_MB=${TEST_DISK_MB:-4096}
HTTP_PORT=${HTTP_PORT:-18080}
SSH_PORT=${SSH_PORT:-18022}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-420}
[ -f "$IMAGE" ] || die "no image at $IMAGE (run: make image)"
image_deps

fail() {
  echo "---- last console lines ($LOG)" >&2
  tail -n 60 "$LOG" >&2 2>/dev/null || true
  [ -z "${QEMU_PID:-}" ] || kill "$QEMU_PID" 2>/dev/null || true
  die "boot test failed: $*"
}
check() { echo "image-test: ok: $*"; }

rm -rf "$DIR"
mkdir -p "$DIR"
t=$(now)
xz -dc -T2 "$IMAGE" | dd of="$DISK" bs=1M conv=sparse status=none
orig_mb=$(( $(stat -c %s "$DISK") / 1048576 ))
truncate -s "${TEST_DISK_MB}M" "$DISK"
log "decompressed ${orig_mb} MiB image, enlarged to ${TEST_DISK_MB} MiB, in $(elapsed "$t")"

# Kernel and initrd: the image's own, from its boot partition (p1).
boot_off=$(sfdisk -l -o Device,Start "$DISK" | awk '$1 ~ /img1$/ {print $2}')
[ -n "$boot_off" ] || die "cannot read the image's partition table"
MT="$DISK@@$((boot_off * 512))"
KERNEL=$(mdir -b -i "$MT" ::/ | sed -n 's|^::/||p' | grep '^vmlinuz' | head -1)
INITRD=$(mdir -b -i "$MT" ::/ | sed -n 's|^::/||p' | grep '^initrd' | head -1)
[ -n "$KERNEL" ] && [ -n "$INITRD" ] || die "no vmlinuz/initrd on the image's boot partition"
mcopy -n -i "$MT" "::/$KERNEL" "$DIR/vmlinuz"
mcopy -n -i "$MT" "::/$INITRD" "$DIR/initrd"
log "kernel $KERNEL, initrd $INITRD"

# SSH: a public key on the boot partition, as a family would put it there.
ssh-keygen -q -t ed25519 -N '' -C image-test -f "$DIR/id_ed25519"
mcopy -i "$MT" "$DIR/id_ed25519.pub" ::/authorized_keys

# The Pi's cmdline (root=LABEL=RASPIROOT ro ...) with qemu's console, plus the
# self-test unit. i6300esb stands in for the Pi's watchdog. restrict=on: the
# guest reaches nothing beyond qemu's DHCP and the two forwards (no NTP, no
# DNS, no STUN leave this machine; the clock stays unsynchronised).
t=$(now)
timeout "$BOOT_TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
  -nographic -no-reboot \
  -kernel "$DIR/vmlinuz" -initrd "$DIR/initrd" \
  -append "root=LABEL=RASPIROOT ro rootwait fsck.repair=yes console=ttyAMA0 systemd.wants=homeline-selftest.service" \
  -drive if=none,file="$DISK",format=raw,id=hd -device virtio-blk-pci,drive=hd \
  -netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:80,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22 -device virtio-net-pci,netdev=net0,romfile= \
  -device i6300esb \
  > "$LOG" 2>&1 < /dev/null &
QEMU_PID=$!

wait_for() { # wait_for PATTERN SECONDS
  i=0
  while ! grep -aq "$1" "$LOG"; do
    kill -0 "$QEMU_PID" 2>/dev/null || fail "qemu exited before '$1'"
    i=$((i + 1)); [ $i -le "$2" ] || fail "no '$1' within $2 s"
    sleep 1
  done
}
wait_for 'HOMELINE-SELFTEST: ready' "$BOOT_TIMEOUT"
log "booted to the self-test in $(elapsed "$t")"
grep -a 'HOMELINE-SELFTEST: homeline.service active' "$LOG" >/dev/null || fail "homeline.service is not active"
check "systemd started homeline.service"
grep -a 'HOMELINE-SELFTEST: grow-data active' "$LOG" >/dev/null || fail "homeline-grow-data.service did not succeed"
failed=$(tr -d '\r' < "$LOG" | sed -n 's/.*HOMELINE-SELFTEST: failed units: *//p')
[ -z "$failed" ] || fail "failed units: $failed"
check "no failed units"

listening=$(tr -d '\r' < "$LOG" | sed -n 's/.*HOMELINE-SELFTEST: listening: //p')
for sock in tcp/0.0.0.0:80 tcp/0.0.0.0:443 udp/0.0.0.0:5060 tcp/0.0.0.0:5060 tcp/0.0.0.0:5061 udp/0.0.0.0:5353; do
  case " $listening " in *" $sock "*) ;; *) fail "Homeline does not listen on $sock (listening: $listening)" ;; esac
done
check "listening on 80, 443, 5060, 5061 and 5353 (mDNS), from /etc/homeline/homeline.conf"

ready=$(curl -s -o "$DIR/ready.json" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HTTP_PORT/api/health/ready" || true)
[ "$ready" = 200 ] || fail "GET /api/health/ready answered '$ready': $(cat "$DIR/ready.json" 2>/dev/null)"
check "GET /api/health/ready -> 200 $(cat "$DIR/ready.json")"
setup=$(curl -s -o "$DIR/setup.json" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$HTTP_PORT/api/setup/status" || true)
[ "$setup" = 200 ] || fail "GET /api/setup/status answered '$setup'"
grep -q '"setup_completed": *false' "$DIR/setup.json" || fail "setup is not reported as not completed: $(cat "$DIR/setup.json")"
check "GET /api/setup/status -> setup_completed false"

SSH="ssh -p $SSH_PORT -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR"
out=$($SSH -i "$DIR/id_ed25519" -o IdentitiesOnly=yes root@127.0.0.1 'hostname; systemctl is-active homeline.service' 2>&1) \
  || fail "ssh with the boot partition's key failed: $out"
[ "$out" = "$(printf 'homeline\nactive')" ] || fail "ssh answered: $out"
check "ssh root@homeline with the key from the boot partition's authorized_keys"
# What the server offers a client with no key: public keys only, no password.
methods=$($SSH -v -o PreferredAuthentications=none root@127.0.0.1 true 2>&1 </dev/null | tr -d '\r' | sed -n 's/.*Authentications that can continue: *//p' | head -1 | tr -d ' ')
[ "$methods" = publickey ] || fail "ssh offers '$methods' (expected publickey only)"
check "ssh offers public-key authentication only (no passwords)"

wait_for 'HOMELINE-SELFTEST: powering off' 200
st=0
wait "$QEMU_PID" || st=$?
QEMU_PID=
[ "$st" = 0 ] || fail "qemu exit status $st (timeout: 124)"
grep -aq 'reboot: Power down' "$LOG" || fail "no clean 'Power down' on the console"
check "clean poweroff, qemu exited after $(elapsed "$t") in all"

echo "---- from the inside"
grep -a 'HOMELINE-SELFTEST:\|grow-data:' "$LOG" | tr -d '\r' | sed 's/^.*\(HOMELINE-SELFTEST: \|grow-data: \)/  \1/'
echo "----"

# The partition table after the boot: p3 reaches the end of the enlarged disk.
sfdisk -d "$DISK" > "$DIR/partitions.txt"
end3=$(sfdisk -l -o Device,End "$DISK" | awk '$1 ~ /img3$/ {print $2}')
total=$(( $(stat -c %s "$DISK") / 512 ))
[ -n "$end3" ] && [ $((total - end3)) -le 4096 ] || fail "data partition not grown: ends at sector $end3 of $total"
check "data partition grown to the end of the ${TEST_DISK_MB} MiB disk (ends at sector $end3 of $total)"

# File systems clean after the poweroff.
t=$(now)
part() { # part N FILE: copy partition N out of the disk (sparse)
  set -- "$1" "$2" $(sfdisk -l -o Device,Start,Sectors "$DISK" | awk -v n="img$1" '$1 ~ n"$" {print $2, $3}')
  dd if="$DISK" of="$2" bs=4M iflag=skip_bytes,count_bytes skip=$(($3 * 512)) count=$(($4 * 512)) conv=sparse status=none
}
part 1 "$DIR/p1.vfat"; part 2 "$DIR/p2.ext4"; part 3 "$DIR/p3.ext4"
fsck.vfat -n "$DIR/p1.vfat" > "$DIR/fsck-p1.txt" 2>&1 || { cat "$DIR/fsck-p1.txt"; fail "boot partition not clean"; }
e2fsck -fn "$DIR/p2.ext4" > "$DIR/fsck-p2.txt" 2>&1 || { cat "$DIR/fsck-p2.txt"; fail "system partition not clean"; }
e2fsck -fn "$DIR/p3.ext4" > "$DIR/fsck-p3.txt" 2>&1 || { cat "$DIR/fsck-p3.txt"; fail "data partition not clean"; }
check "fsck.vfat -n p1, e2fsck -fn p2 and p3: clean ($(tail -1 "$DIR/fsck-p3.txt"))"
log "file system checks in $(elapsed "$t")"
rm -f "$DIR"/p?.* "$DISK"
echo "image-test: passed in $(elapsed "$T0")"
