#!/usr/bin/env bash
# `npm run build [-- OUTDIR]`: compiles src/ to JavaScript (tsconfig.build.json) into dist/ (or
# OUTDIR) and copies beside it the non-TypeScript files the code reads at run time from its own
# directory (today the DRA .proto files of src/agent/dra/proto/), which tsc does not emit.
# The compiled code finds crds/ and examples/ at ../.. of its modules, as the sources do, so
# OUTDIR must sit directly in a package root that has them (dist/ of this repository, or of
# a copy of it); test/cli/build.test.ts builds into such a copy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/ensure-deps.sh

out="${1:-dist}"
# Start from an empty directory so no file of a deleted or renamed source ships. Only ever
# remove something that looks like an earlier build (cli.js, or src/cli.js from the days when
# the build compiled the whole tree).
if [[ -e "$out" ]]; then
  if [[ ! -f "$out/cli.js" && ! -f "$out/src/cli.js" && -n "$(ls -A "$out")" ]]; then
    echo "[build] $out exists and is not an earlier build (no cli.js); not replacing it" >&2
    exit 1
  fi
  rm -rf "$out"
fi

node_modules/.bin/tsc -p tsconfig.build.json --outDir "$out"

abs_out="$(cd "$out" && pwd)"
(cd src && find . -type f ! -name '*.ts' -print0 | while IFS= read -r -d '' f; do
  mkdir -p "$abs_out/$(dirname "$f")"
  cp "$f" "$abs_out/$f"
done)
echo "[build] compiled src/ into $out" >&2
