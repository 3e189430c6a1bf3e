#!/usr/bin/env bash
# Everything CI checks: the Swift test suite, then the Python reference's tests (numpy-only tests always; tests that
# need torch are skipped, with a reason, where torch is not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# Python test dependencies; the Swift tests use them too (usm-pack import runs the Python NeMo importer)
python3 -m pip install -q numpy pytest xxhash zstandard soundfile pyyaml "ray[data]" >/dev/null 2>&1 || true
swift test
# libusm, for the Python binding's tests (python/usm_infer over the C API)
swift build --product usm 2>&1 | tail -1
if [ -d python/tests ]; then
  python3 -m pytest -q -rs python/tests
fi
