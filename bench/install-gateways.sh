#!/usr/bin/env bash
# Installs the gateways that `mcpd-bench gateways` compares mcpd with, at
# pinned versions, into a cache directory (default ~/.cache/mcpd-bench,
# or $MCPD_BENCH_CACHE):
#   supergateway/  npm `supergateway` (node_modules under it)
#   mcp-proxy/     a Python venv with PyPI `mcp-proxy`
# Needs node + npm and python3 with venv. Re-running is cheap: a directory
# that already holds the pinned version is left alone.
set -euo pipefail

SUPERGATEWAY_VERSION=4.0.0
MCP_PROXY_VERSION=0.13.0

dir="${MCPD_BENCH_CACHE:-$HOME/.cache/mcpd-bench}"
mkdir -p "$dir"

sg="$dir/supergateway"
have=$(node -p "require('$sg/node_modules/supergateway/package.json').version" 2>/dev/null || true)
if [ "$have" != "$SUPERGATEWAY_VERSION" ]; then
    echo "==> installing supergateway@$SUPERGATEWAY_VERSION into $sg"
    npm install --prefix "$sg" --no-audit --no-fund --loglevel=error "supergateway@$SUPERGATEWAY_VERSION"
fi

mp="$dir/mcp-proxy"
have=$("$mp/bin/python" -m pip show mcp-proxy 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$have" != "$MCP_PROXY_VERSION" ]; then
    echo "==> installing mcp-proxy==$MCP_PROXY_VERSION into $mp"
    rm -rf "$mp"
    python3 -m venv "$mp"
    "$mp/bin/python" -m pip install -q --disable-pip-version-check "mcp-proxy==$MCP_PROXY_VERSION"
fi

sdk=$(node -p "require('$sg/node_modules/@modelcontextprotocol/sdk/package.json').version" 2>/dev/null || echo '?')
mcp=$("$mp/bin/python" -m pip show mcp 2>/dev/null | sed -n 's/^Version: //p')
echo "gateways: supergateway $SUPERGATEWAY_VERSION (TypeScript MCP SDK $sdk, node $(node --version))," \
    "mcp-proxy $MCP_PROXY_VERSION (Python MCP SDK $mcp, $(python3 --version))"
