#!/usr/bin/env bash
# Builds the Python wheel of the usm_infer binding with libusm and every shared library it needs inside (the Swift
# runtime, libsndfile with its codecs, libsamplerate, libzstd, libxxhash), then installs it into a fresh virtualenv
# and runs the binding's tests there with nothing of the checkout on the import path and no USM_LIBRARY.
#
#   bash scripts/build-wheel.sh [OUT_DIR]        (default dist/; the wheel: usm_infer-<version>-py3-none-manylinux_*.whl)
#
# Steps: swift build -c release --product usm; a platform wheel of python/usm_infer with libusm.so beside the
# package (setuptools); `auditwheel repair` copies the libraries libusm.so links (outside the manylinux allowed set)
# into usm_infer.libs/ and points libusm.so's RPATH at them (patchelf), tagging the wheel with the glibc it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
bash scripts/deps.sh
swift build -c release --product usm 2>&1 | tail -1
LIB="$ROOT/.build/release/libusm.so"
[ -f "$LIB" ] || { echo "error: $LIB was not built" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q --upgrade pip setuptools wheel auditwheel patchelf

# the package with libusm.so inside it (library_path() looks beside the package first)
mkdir -p "$WORK/src/usm_infer"
cp python/usm_infer/*.py "$WORK/src/usm_infer/"
cp "$LIB" "$WORK/src/usm_infer/libusm.so"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' python/pyproject.toml | head -1)
cat > "$WORK/src/setup.py" <<EOF
from setuptools import setup
from setuptools.dist import Distribution

class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: it carries a native library
        return True

setup(name="usm-infer", version="$VERSION", description="Python binding of usm-infer (libusm inside)",
      packages=["usm_infer"], package_data={"usm_infer": ["libusm.so"]}, include_package_data=True,
      install_requires=["numpy"], python_requires=">=3.10", distclass=BinaryDistribution, zip_safe=False)
EOF
(cd "$WORK/src" && "$WORK/tools/bin/python" setup.py -q bdist_wheel -d "$WORK/raw" >/dev/null 2>&1)
RAW=$(ls "$WORK"/raw/*.whl)
# the Swift runtime is found through the toolchain's lib folder; auditwheel bundles what it finds
export LD_LIBRARY_PATH="/opt/swift/usr/lib/swift/linux${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$WORK/tools/bin:$PATH"  # patchelf for auditwheel
PLAT=$("$WORK/tools/bin/auditwheel" show "$RAW" | sed -n 's/.*"\(manylinux_[0-9]*_[0-9]*_[a-z0-9_]*\)".*/\1/p' | head -1)
[ -n "$PLAT" ] || { "$WORK/tools/bin/auditwheel" show "$RAW"; echo "error: no manylinux tag fits" >&2; exit 1; }
"$WORK/tools/bin/auditwheel" repair --plat "$PLAT" -w "$WORK/repaired" "$RAW" >/dev/null
# the binding is ctypes over a C library: any CPython 3 takes it (py3-none), the platform tag stays
REPAIRED=$(ls "$WORK"/repaired/*.whl)
WHEEL="$OUT/$("$WORK/tools/bin/wheel" tags --python-tag py3 --abi-tag none --remove "$REPAIRED" | tail -1)"
rm -f "$WHEEL"
mv "$WORK/repaired/$(basename "$WHEEL")" "$WHEEL"
echo "wheel: $WHEEL ($(du -h "$WHEEL" | cut -f1))"

# test the installed wheel: a new venv, a folder outside the checkout, no USM_LIBRARY
unset LD_LIBRARY_PATH USM_LIBRARY
python3 -m venv "$WORK/test"
"$WORK/test/bin/pip" install -q "$WHEEL" pytest soundfile
mkdir -p "$WORK/run"
cp python/tests/test_usm_infer.py "$WORK/run/"
cd "$WORK/run"
"$WORK/test/bin/python" - <<EOF
import usm_infer, os
p = usm_infer.library_path()
assert p.startswith("$WORK/test/"), p
print("libusm from", p)
EOF
USM_CHECKOUT="$ROOT" "$WORK/test/bin/python" -m pytest -q -p no:cacheprovider test_usm_infer.py
