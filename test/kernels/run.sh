#!/usr/bin/env bash
# Loads, attaches and runs every BPF object of build/bpf on Debian's own
# kernels, as libbpf's CI (vmtest) does: each kernel boots under QEMU (TCG,
# no KVM needed) with an initramfs holding only busybox, a static loader
# (loader.c) and the objects; the loader prints what loaded, attached and
# ran, then powers off. Prints a table: one row per object, one column per
# kernel (and this machine's kernel), and the syscalls slot check.
#
#   bash test/kernels/run.sh                  # Debian 12's cloud and PREEMPT_RT kernels, and this machine
#   KERNELS="cloud" bash test/kernels/run.sh  # only some flavours
#
# Exit status: 0 when every run finished and the slot check held everywhere;
# object failures are the table's content, not a failure of the run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/build/kernels
flavours=${KERNELS:-cloud rt}
timeout_s=${KERNEL_BOOT_TIMEOUT:-600}

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || missing+=(busybox-static)
[ -e /usr/lib/x86_64-linux-gnu/libbpf.a ] || missing+=(libbpf-dev)
[ -e /usr/lib/x86_64-linux-gnu/libelf.a ] || missing+=(libelf-dev)
[ -e /usr/lib/x86_64-linux-gnu/libz.a ] || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ]; then
	echo "test/kernels/run.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
	exit 1
fi

mkdir -p "$work/logs"
make -s -C "$root/bpf" >/dev/null || echo "test/kernels/run.sh: make -C bpf failed; testing build/bpf as it is" >&2
# Not in build/bpf: it needs the kernel's per-CPU symbols in kallsyms (CONFIG_KALLSYMS_ALL, as Debian's kernels have).
clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I"$root/bpf" -c "$root/test/kernels/preemption.bpf.c" -o "$work/preemption.bpf.o"
gcc -static -O2 -Wall -Wextra -o "$work/loader" "$root/test/kernels/loader.c" \
	-l:libbpf.a -l:libelf.a -l:libz.a -lpthread 2> >(grep -v 'statically linked' >&2)

# The initramfs: busybox, the loader, the objects, and an init that runs the loader and powers off.
initramfs_dir=$work/initramfs
rm -rf "$initramfs_dir"
mkdir -p "$initramfs_dir"/{bin,bpf,test-bpf,proc,sys,dev,tmp}
cp /bin/busybox "$initramfs_dir/bin/busybox"
for applet in sh mount poweroff uname true cat; do ln -s busybox "$initramfs_dir/bin/$applet"; done
cp "$work/loader" "$initramfs_dir/bin/loader"
cp "$root"/build/bpf/*.bpf.o "$initramfs_dir/bpf/"
cp "$work/preemption.bpf.o" "$initramfs_dir/test-bpf/"
cat >"$initramfs_dir/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
echo "KERNEL $(uname -r) $(uname -v)"
cd /tmp
/bin/loader /bpf/*.bpf.o /test-bpf/preemption.bpf.o --slot-check /bpf/syscalls.bpf.o
echo "LOADER-EXIT $?"
poweroff -f
EOF
chmod +x "$initramfs_dir/init"
(cd "$initramfs_dir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initramfs.cpio.gz"

# The newest of Debian's 6.1 images of a flavour, fetched (not installed) with apt and unpacked here.
newest_image_package() {
	apt-cache search --names-only "^linux-image-6\.1\.0-[0-9]+-$1-amd64\$" | cut -d' ' -f1 | sort -V | tail -1
}

kernel_image() {
	local flavour=$1 package deb
	package=$(newest_image_package "$flavour")
	if [ -z "$package" ] || { [ ! -d "$work/$package" ] && ! (cd "$work" && apt-get download "$package" >&2 2>/dev/null); }; then
		# Lists older than the archive name a version it no longer has: update them once and look again.
		apt-get update -q >&2
		package=$(newest_image_package "$flavour")
		[ -n "$package" ] || { echo "test/kernels/run.sh: no linux-image-6.1.0-*-$flavour-amd64 in Debian's archive" >&2; return 1; }
		[ -d "$work/$package" ] || (cd "$work" && apt-get download "$package" >&2)
	fi
	if [ ! -d "$work/$package" ]; then
		deb=$(ls "$work/${package}"_*.deb | tail -1)
		dpkg-deb -x "$deb" "$work/$package.tmp"
		mv "$work/$package.tmp" "$work/$package"
	fi
	ls "$work/$package"/boot/vmlinuz-*
}

# Boots one kernel; its serial console goes to logs/<name>.log.
boot() {
	local name=$1 image=$2
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -nographic -no-reboot \
		-kernel "$image" -initrd "$work/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 loglevel=3 rdinit=/init" </dev/null >"$work/logs/$name.log" 2>&1 || true
	tr -d '\r' <"$work/logs/$name.log" >"$work/logs/$name.log.tmp" && mv "$work/logs/$name.log.tmp" "$work/logs/$name.log"
}

columns=()
for flavour in $flavours; do
	image=$(kernel_image "$flavour")
	name=$(basename "$image" | sed 's/^vmlinuz-//')
	echo "booting $name under QEMU (TCG)..." >&2
	start=$(date +%s)
	boot "$name" "$image"
	echo "  $(($(date +%s) - start)) s" >&2
	columns+=("$name")
done
# This machine's kernel, for comparison.
host=$(uname -r)
(cd /tmp && echo "KERNEL $host $(uname -v)" && "$work/loader" "$root"/build/bpf/*.bpf.o --slot-check "$root/build/bpf/syscalls.bpf.o"; echo "LOADER-EXIT $?") \
	>"$work/logs/$host.log" 2>&1 || true
columns+=("$host")

node "$root/test/kernels/table.mjs" "$work/logs" "${columns[@]}"
