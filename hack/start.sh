#!/usr/bin/env bash
# `npm start`: the local playground — a real control plane, the controller and one simulated
# agent per node of examples/topology.yaml (or the topology given with --topology).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/ensure-deps.sh
exec node --import=tsx src/cli.ts dev --topology examples/topology.yaml "$@"
