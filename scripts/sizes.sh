#!/usr/bin/env bash
# Size table: each image's `latest` as debless builds it vs the same image made from
# whole packages (Google distroless's recipe: every file of every .deb), both from the
# committed lock. Prints a Markdown table (uncompressed = sum of layer tars).
set -euo pipefail
cd "$(dirname "$0")/.."
DEBLESS=${DEBLESS:-target/release/debless}
DISTRO=${DISTRO:-debian13}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for mode in slim whole; do
    flag=""
    [ "$mode" = whole ] && flag=--whole-packages
    "$DEBLESS" build --distro "$DISTRO" --variant latest $flag --out "$tmp/$mode" 2>&1 \
        | awk '$1 ~ /:latest$/ {print $1, $2, $3, $4}' > "$tmp/$mode.txt"
done
echo "| image ($DISTRO) | arch | debless | whole packages | smaller by | debless gzip | whole gzip |"
echo "|---|---|---:|---:|---:|---:|---:|"
paste -d' ' "$tmp/slim.txt" "$tmp/whole.txt" | awk '{
    printf "| %s | %s | %.1f MB | %.1f MB | %.0f %% | %.1f MB | %.1f MB |\n",
        substr($1, 1, length($1) - 7), $2, $3 / 1e6, $7 / 1e6, 100 * (1 - $3 / $7), $4 / 1e6, $8 / 1e6
}'
