#!/usr/bin/env bash
# Size table: each image's `latest` as debless builds it vs the same image made from
# whole packages (Google distroless's recipe: every file of every .deb), both from the
# committed lock. Prints a Markdown table (uncompressed = sum of layer tars).
# Reads `build --json` (docs/json.md), not the summary, whose sizes are for people.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBLESS=${DEBLESS:-target/release/debless}
DISTRO=${DISTRO:-debian13}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for mode in slim whole; do
    flag=""
    [ "$mode" = whole ] && flag=--whole-packages
    "$DEBLESS" build --distro "$DISTRO" --variant latest $flag --out "$tmp/$mode" --json \
        > "$tmp/$mode.json"
    # One row per image and architecture of `latest`: image arch uncompressed compressed.
    python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["images"]:
    if r["tag"] == "latest":
        print(r["image"], r["arch"], r["uncompressed_bytes"], r["compressed_bytes"])
' "$tmp/$mode.json" > "$tmp/$mode.txt"
done
echo "| image ($DISTRO) | arch | debless | whole packages | smaller by | debless gzip | whole gzip |"
echo "|---|---|---:|---:|---:|---:|---:|"
paste -d' ' "$tmp/slim.txt" "$tmp/whole.txt" | awk '{
    printf "| %s | %s | %.1f MB | %.1f MB | %.0f %% | %.1f MB | %.1f MB |\n",
        $1, $2, $3 / 1e6, $7 / 1e6, 100 * (1 - $3 / $7), $4 / 1e6, $8 / 1e6
}'
