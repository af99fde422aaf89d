#!/usr/bin/env bash
# Do two debless revisions build byte-identical images from one lock?
#
#   scripts/same-bytes.sh BASE_REV [NEW_REV]
#
# Either side may also be the path of a debless binary already built (no compilation).
# A refactor must move no digest. This builds debless at BASE_REV and at NEW_REV (default:
# the working tree), then builds every image of every distro with each binary from the
# same project files (NEW_REV's rules/ and snapshots/), the same locks and the same filled
# .deb cache, offline, and compares the two output trees byte for byte: OCI layouts
# (index.json, every manifest, config and layer blob), SPDX documents, provenance
# statements (the binary's own SHA256 masked), and an oci-archive and docker-archive of the
# last distro and a zstd build of the first.
#
# The archive moves every week, so a committed lock may no longer be downloadable:
# SAME_BYTES_PIN=1 pins a fresh lock (with BASE_REV's binary) into the scratch project
# first. SAME_BYTES_DIR keeps the scratch directory (default: a temporary one, removed).
# SAME_BYTES_DISTROS picks the distros (default: debian13 debian12).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base_rev=${1:?usage: scripts/same-bytes.sh BASE_REV [NEW_REV]}
new_rev=${2:-}
distros=${SAME_BYTES_DISTROS:-debian13 debian12}
work=${SAME_BYTES_DIR:-$(mktemp -d)}
[ -n "${SAME_BYTES_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"

# build_at REV NAME: a release binary of REV at $work/NAME/debless (the working tree if
# REV is empty). Each revision gets its own worktree and target directory.
build_at() {
    local rev=$1 name=$2 src
    if [ -f "$rev" ] && [ -x "$rev" ]; then
        mkdir -p "$work/$name"
        cp "$rev" "$work/$name/debless"
        return
    fi
    if [ -z "$rev" ]; then
        # The working tree builds in its own target directory, as `make build` does.
        echo "building debless from the working tree" >&2
        cargo build --release --locked --quiet
        mkdir -p "$work/$name"
        cp target/release/debless "$work/$name/debless"
        return
    else
        src=$work/$name-src
        rm -rf "$src"
        git worktree add --detach -f "$src" "$rev" >/dev/null
    fi
    echo "building debless at ${rev:-the working tree}" >&2
    (cd "$src" && cargo build --release --locked --quiet --target-dir "$work/$name-target")
    mkdir -p "$work/$name"
    cp "$work/$name-target/release/debless" "$work/$name/debless"
    if [ -n "$rev" ]; then
        git worktree remove --force "$src"
    fi
}
build_at "$base_rev" base
build_at "$new_rev" new

# One scratch project (the new revision's rules and manifests) and one .deb cache for both.
proj=$work/project
rm -rf "$proj"
mkdir -p "$proj"
if [ -z "$new_rev" ] || [ -f "$new_rev" ]; then
    cp -r "$root/rules" "$root/snapshots" "$proj/"
else
    git archive "$new_rev" rules snapshots | tar -x -C "$proj"
fi
cache=$work/cache
for d in $distros; do
    if [ "${SAME_BYTES_PIN:-0}" = 1 ]; then
        "$work/base/debless" -C "$proj" --quiet pin --distro "$d" --cache-dir "$cache"
    fi
    "$work/base/debless" -C "$proj" --quiet fetch --distro "$d" --cache-dir "$cache"
done

# Each binary builds into its own output tree. The layer cache's keys include the binary's
# own digest, so neither build can take a layer the other made.
for name in base new; do
    out=$work/out-$name
    rm -rf "$out"
    for d in $distros; do
        "$work/$name/debless" -C "$proj" --quiet build --distro "$d" --offline \
            --cache-dir "$cache" --out "$out/oci"
    done
    last=${distros##* }
    first=${distros%% *}
    "$work/$name/debless" -C "$proj" --quiet build --distro "$last" --offline \
        --cache-dir "$cache" --out "$out/oci-archive" --format oci-archive
    "$work/$name/debless" -C "$proj" --quiet build --distro "$last" --offline \
        --cache-dir "$cache" --out "$out/docker-archive" --format docker-archive
    "$work/$name/debless" -C "$proj" --quiet build --distro "$first" --offline \
        --cache-dir "$cache" --out "$out/zstd" --compression zstd
done

# A provenance statement names the debless binary that made it by its SHA256, which two
# revisions cannot share: compare the statements with that digest masked, and everything
# else byte for byte.
for name in base new; do
    digest=$(sha256sum "$work/$name/debless" | cut -d' ' -f1)
    masked=$work/provenance-$name
    rm -rf "$masked"
    (cd "$work/out-$name" && find . -path '*.provenance/*' -type f) | while read -r f; do
        mkdir -p "$masked/$(dirname "$f")"
        sed "s/$digest/DEBLESS-BINARY-SHA256/g" "$work/out-$name/$f" >"$masked/$f"
    done
done

if diff -r -x '*.provenance' "$work/out-base" "$work/out-new" >"$work/diff.txt" &&
    diff -r "$work/provenance-base" "$work/provenance-new" >>"$work/diff.txt"; then
    files=$(find "$work/out-new" -type f | wc -l)
    indexes=$(find "$work/out-new/oci" -name index.json | wc -l)
    echo "same bytes: $files files ($indexes layouts) identical between ${base_rev} and ${new_rev:-the working tree} (provenance with the binary's digest masked)"
else
    echo "DIFFERENT: the two revisions' outputs differ:" >&2
    head -n 40 "$work/diff.txt" >&2
    exit 1
fi
