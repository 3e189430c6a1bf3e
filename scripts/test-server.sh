#!/usr/bin/env bash
# The usm-server package (Server/): builds it and runs its tests, which start the server on a loopback port and
# talk to it with a real HTTP client (AsyncHTTPClient) and a WebSocket client. A first build compiles Hummingbird,
# SwiftNIO and AsyncHTTPClient (several minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift test --package-path Server --scratch-path .build-server
