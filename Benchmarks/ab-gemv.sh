#!/bin/bash
# Usage: bash Benchmarks/ab-gemv.sh ROUNDS [usm-bench kernels arguments]
# Runs `usm-bench kernels --gemv lut` and `--gemv popcnt` alternately ROUNDS times each (release build in
# .build/release) and prints the median, minimum and all times (µs) per configuration line.
R=$1; shift
for i in $(seq $R); do for g in lut popcnt; do .build/release/usm-bench kernels --gemv $g "$@" 2>&1 | grep -E " us " | grep -v " vs " | awk -v g=$g '{for(i=1;i<=NF;i++) if($i=="us") {print g"|"$2" "$3" "$4" "$5" "$6"|"$(i-1)}}'; done; done | \
python3 -c '
import sys,statistics,collections
d=collections.defaultdict(list)
for l in sys.stdin:
    g,k,v=l.strip().split("|"); d[(k,g)].append(float(v))
for (k,g),v in sorted(d.items()): print(f"{k:42s} {g:7s} median {statistics.median(v):7.1f}  min {min(v):7.1f}  n={len(v)}  all {sorted(v)}")
'
