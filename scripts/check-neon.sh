#!/usr/bin/env bash
# Checks the arm64 NEON kernels (Sources/CUSMKernels/kernels_neon.c) against the portable C path on an x86-64 host:
# cross-compiles Tests/CKernelsNEON/neon_check.c with kernels.c, kernels_neon.c, pool.c and elementwise.c (kernels.c calls its attention) for aarch64 and runs it
# under qemu-aarch64 twice: as a CPU with dotprod (-cpu max: the neon and neondotprod tiers) and as a Cortex-A53
# (no dotprod: the neondotprod tier must not be reported and must fall back to baseline NEON). On an arm64 host it
# builds and runs natively. Exit status non-zero on any mismatch.
#
# Needs clang (the Swift toolchain's works), lld, qemu-user-static and the Debian arm64 cross libc
# (libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross); installs them with apt-get when missing and possible, and
# otherwise exits 0 with a SKIP message. Slow under emulation (minutes) and not part of scripts/test.sh.
# Usage: scripts/check-neon.sh [neon_check options: -s SEED -r RANDOM_CASES -t -v]
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=Sources/CUSMKernels
OUT=${NEON_CHECK_DIR:-.build/neon-check}
mkdir -p "$OUT"
skip() { echo "check-neon: SKIP: $*"; exit 0; }

CC=${CC:-clang}
command -v "$CC" >/dev/null || skip "no clang found (set CC)"
CFLAGS=(-std=c11 -O2 -Wall -Wextra -I"$SRC/include" -I"$SRC")
SRCS=("$SRC/kernels.c" "$SRC/kernels_neon.c" "$SRC/pool.c" "$SRC/elementwise.c" Tests/CKernelsNEON/neon_check.c)

if [ "$(uname -m)" = aarch64 ] || [ "$(uname -m)" = arm64 ]; then
  "$CC" "${CFLAGS[@]}" "${SRCS[@]}" -o "$OUT/neon_check" -lpthread -lm
  "$OUT/neon_check" "$@"
  exit $?
fi

SYSROOT=/usr/aarch64-linux-gnu
QEMU=${QEMU:-qemu-aarch64-static}
need=()
command -v "$QEMU" >/dev/null || need+=(qemu-user-static)
[ -e "$SYSROOT/lib/libc.so.6" ] && [ -e "$SYSROOT/include/stdio.h" ] || need+=(libc6-dev-arm64-cross)
ls /usr/lib/gcc-cross/aarch64-linux-gnu/*/crtbegin.o >/dev/null 2>&1 || need+=(libgcc-12-dev-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  echo "check-neon: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; } >"$OUT/apt.log" 2>&1; then
    skip "could not install ${need[*]} with apt-get (see $OUT/apt.log)"
  fi
  command -v "$QEMU" >/dev/null || skip "$QEMU not found after installing qemu-user-static"
fi
LD=(-fuse-ld=lld)
if ! command -v ld.lld >/dev/null && ! command -v "$(dirname "$(command -v "$CC")")/ld.lld" >/dev/null; then
  command -v aarch64-linux-gnu-ld >/dev/null || skip "no lld or aarch64 binutils to link with"
  LD=()
fi

# every C file of the kernel target must build for arm64 (x86-only code is behind #if defined(__x86_64__))
for f in "$SRC"/*.c; do
  "$CC" --target=aarch64-linux-gnu --gcc-toolchain=/usr "${CFLAGS[@]}" -c "$f" -o "$OUT/$(basename "$f" .c).o"
done
echo "check-neon: every file of $SRC compiles for aarch64"

# --gcc-toolchain=/usr finds the Debian cross headers, crt files and libgcc; static: no loader prefix for qemu needed
"$CC" --target=aarch64-linux-gnu --gcc-toolchain=/usr "${LD[@]}" -static "${CFLAGS[@]}" "${SRCS[@]}" \
  -o "$OUT/neon_check" -lpthread -lm

status=0
for cpu in max cortex-a53; do
  echo "== $QEMU -cpu $cpu"
  "$QEMU" -cpu "$cpu" "$OUT/neon_check" "$@" || status=1
done
[ $status = 0 ] && echo "check-neon: all NEON kernels match the portable path" || echo "check-neon: FAILED"
exit $status
