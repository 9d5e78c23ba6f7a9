#!/bin/sh
# Record a kmem/vmalloc ftrace trace from another kernel in a KVM guest.
#
#   benches/record_vm.sh [-A tcg|kvm] [-a x86_64|i386] [-m MiB] [-s CPUS] [-b KB] [-w WORKLOAD]
#                        [-B BUSYBOX] -k VMLINUZ -o OUTDIR
#
# Boots VMLINUZ under qemu (KVM) with a tiny initramfs made of one static busybox
# and an /init script. The guest mounts tracefs, enables the kmem events (and the
# vmalloc events where the kernel has them), runs WORKLOAD (a busybox shell snippet;
# default below), stops tracing and writes a tar of
#   trace          the `trace` file, after a "# kmemspec record-vm:" header line
#   buddyinfo      /proc/buddyinfo at the end
#   zoneinfo       /proc/zoneinfo at the end
#   uname, events  uname -a, and the event names that were enabled
# to its second serial port (ttyS1, raw), which qemu writes to a host file. No
# kernel modules, network or disk are needed: tracefs, the kmem events and the
# 8250 serial driver are built into Debian's kernels. OUTDIR receives trace.txt.xz,
# buddyinfo, zoneinfo, uname and console.log.
#
# Kernel images without installing them (Debian bookworm):
#   apt-get download linux-image-6.1.0-50-amd64-unsigned
#   dpkg --add-architecture i386 && apt-get update
#   apt-get download linux-image-6.1.0-50-686-pae-unsigned:i386 busybox-static:i386
#   dpkg-deb -x linux-image-...deb x/   # the image is x/boot/vmlinuz-*
# A 32-bit kernel needs a 32-bit busybox (-B x/bin/busybox of busybox-static:i386).
# Needs qemu-system-x86 (apt-get install qemu-system-x86) and /dev/kvm.
set -eu

ACCEL=tcg ARCH=x86_64 MEM=512 CPUS=1 BUF_KB=16384 BUSYBOX=/bin/busybox KERNEL= OUT= WORKLOAD=
while getopts A:a:m:s:b:w:B:k:o: opt; do
    case $opt in
        A) ACCEL=$OPTARG ;; a) ARCH=$OPTARG ;; m) MEM=$OPTARG ;; s) CPUS=$OPTARG ;; b) BUF_KB=$OPTARG ;;
        w) WORKLOAD=$OPTARG ;; B) BUSYBOX=$OPTARG ;; k) KERNEL=$OPTARG ;; o) OUT=$OPTARG ;;
        *) echo "usage: $0 [-a x86_64|i386] [-m MiB] [-s CPUS] [-b KB] [-w WORKLOAD] [-B BUSYBOX] -k VMLINUZ -o OUTDIR" >&2; exit 2 ;;
    esac
done
[ -n "$KERNEL" ] && [ -n "$OUT" ] || { echo "$0: -k VMLINUZ and -o OUTDIR are required" >&2; exit 2; }
[ -r "$KERNEL" ] || { echo "$0: cannot read kernel image $KERNEL" >&2; exit 2; }
[ -x "$BUSYBOX" ] || { echo "$0: no busybox at $BUSYBOX" >&2; exit 2; }
case $ARCH in
    x86_64) QEMU=qemu-system-x86_64 ;; i386) QEMU=qemu-system-i386 ;;
    *) echo "$0: unknown arch $ARCH" >&2; exit 2 ;;
esac
command -v busybox >/dev/null || { echo "$0: busybox (host, for cpio) not found" >&2; exit 2; }
command -v $QEMU >/dev/null || { echo "$0: $QEMU not found (apt-get install qemu-system-x86)" >&2; exit 2; }

# The default workload: file and directory churn in tmpfs (page cache, dentries,
# inodes; highmem pages on i386), compression (large kmallocs and anonymous
# memory), many short processes (kernel stacks: vmalloc on x86_64) and pipes.
if [ -z "$WORKLOAD" ]; then
    WORKLOAD='
mkdir -p /tmp/w
for i in 1 2 3 4 5 6 7 8; do
  dd if=/dev/urandom of=/tmp/w/r$i bs=64k count=16 2>/dev/null
  gzip -c /tmp/w/r$i > /tmp/w/r$i.gz
  find / -xdev -name "*.gz" >/dev/null
  for j in 1 2 3 4 5 6 7 8 9 10; do echo $i$j > /tmp/w/f$i$j; /bin/true; done
  cat /tmp/w/f$i* | sort | uniq -c >/dev/null
  ls -lR /proc/self /sys/kernel/mm >/dev/null 2>&1
done
rm -rf /tmp/w
sync'
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/root/bin" "$WORK/root/sbin" "$WORK/root/usr/bin" "$WORK/root/usr/sbin" \
         "$WORK/root/proc" "$WORK/root/sys" "$WORK/root/dev" "$WORK/root/tmp"
cp "$BUSYBOX" "$WORK/root/bin/busybox"
printf '%s\n' "$WORKLOAD" > "$WORK/root/workload.sh"
cat > "$WORK/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
    mount -t debugfs nodev /sys/kernel/debug
T=/sys/kernel/tracing; [ -e \$T/trace ] || T=/sys/kernel/debug/tracing
echo 0 > \$T/tracing_on
echo $BUF_KB > \$T/buffer_size_kb
echo global > \$T/trace_clock
echo 0 > \$T/options/hash-ptr 2>/dev/null
: > /tmp/events
for e in kmem/mm_page_alloc kmem/mm_page_free kmem/mm_page_free_batched \
         kmem/mm_page_alloc_zone_locked kmem/mm_page_pcpu_drain kmem/kmalloc \
         kmem/kfree kmem/kmem_cache_alloc kmem/kmem_cache_free kmem/kmalloc_node \
         kmem/kmem_cache_alloc_node vmalloc/alloc_vmap_area \
         vmalloc/free_vmap_area_noflush vmalloc/purge_vmap_area_lazy; do
    [ -e \$T/events/\$e/enable ] && echo 1 > \$T/events/\$e/enable && echo \$e >> /tmp/events
done
echo > \$T/trace
echo 1 > \$T/tracing_on
sh /workload.sh
echo 0 > \$T/tracing_on
mkdir /tmp/out
uname -a > /tmp/out/uname
cp /tmp/events /tmp/out/events
cat /proc/buddyinfo > /tmp/out/buddyinfo
cat /proc/zoneinfo > /tmp/out/zoneinfo
{ echo "# kmemspec record-vm: uname=\$(uname -r) machine=\$(uname -m) mem=${MEM}M cpus=$CPUS events=\$(tr '\n' ',' < /tmp/events)"
  cat \$T/trace; } > /tmp/out/trace
stty -F /dev/ttyS1 raw -echo
cd /tmp/out && tar c trace buddyinfo zoneinfo uname events | gzip > /dev/ttyS1
sync
echo kmemspec-record-vm-done
poweroff -f
EOF
chmod +x "$WORK/root/init"
(cd "$WORK/root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$WORK/initrd.gz"

mkdir -p "$OUT"
# One vCPU by default and nice: the host is shared. TCG by default: on this (nested)
# host a KVM guest hung at boot and -cpu host was refused; -A kvm where KVM works.
timeout 900 nice -n 10 $QEMU -accel "$ACCEL" -m "$MEM" -smp "$CPUS" \
    -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
    -append "console=ttyS0 panic=-1 rdinit=/init nokaslr" \
    -display none -monitor none -no-reboot \
    -serial "file:$OUT/console.log" -serial "file:$WORK/out.tgz"
grep -q kmemspec-record-vm-done "$OUT/console.log" ||
    { echo "$0: the guest did not finish; see $OUT/console.log" >&2; exit 1; }
mkdir "$WORK/out"
tar xzf "$WORK/out.tgz" -C "$WORK/out"
cp "$WORK/out/buddyinfo" "$WORK/out/zoneinfo" "$WORK/out/uname" "$OUT/"
xz -9 -c "$WORK/out/trace" > "$OUT/trace.txt.xz"
echo "$OUT: $(grep -c -v '^#' "$WORK/out/trace") events, $(stat -c %s "$OUT/trace.txt.xz") bytes xz; $(cat "$OUT/uname")"
