#!/usr/bin/env bash
# Installs node-llama-cpp@3.21.1 in this folder only, for side-by-side benchmarks.
set -euo pipefail
cd "$(dirname "$0")"
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --no-package-lock
