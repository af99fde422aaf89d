#!/usr/bin/env bash
# `make bench`: how fast debless builds images, and how that compares with the usual
# alternative (mmdebstrap + umoci), both fed by a local mirror on 127.0.0.1 so that the
# network does not decide the figures. Writes BENCHMARKS.md.
#
#   1. Seed, once (kept in $BENCH_DIR): a scratch project (copies of rules/ and the snapshot
#      manifests, so the committed lock is never touched); every suite's InRelease and
#      Packages.xz from the host's Debian mirror into a local mirror tree; a fresh pin
#      against that local mirror, so lock and indices agree by construction; every .deb of
#      the family from the host's mirror, hard-linked into the local mirror's pool.
#   2. debless: one image (python3, latest, amd64) and the whole family, each in four
#      states (cold, warm-debs, warm, no-op), BENCH_RUNS times: median wall time, peak RSS,
#      bytes written. Also `debless fetch` of the same into an empty cache: the download
#      time a cold build is held against.
#   3. Determinism: the family built with -j 1 and -j 2 gives identical index.json files.
#   4. Peer: mmdebstrap with the python3 image's package set, then umoci, same runs.
#   5. The report.
#
# Environment:
#   BENCH_DIR     work directory; the seed is kept here between runs (default target/bench)
#   BENCH_RUNS    runs per measurement; the median is reported (default 3)
#   BENCH_QUICK   1: skip the family; determinism is then checked on the one image
#   BENCH_RESEED  1: pin and download again instead of reusing the seed
#   BENCH_REPORT  the report to write (default BENCHMARKS.md)
#   BENCH_NOTE    a line for the top of the report, e.g. "preliminary: noisy machine"
#   APT_SOURCES   the host's apt sources, read for the Debian mirror's URIs
#                 (default /etc/apt/sources.list.d/debian.sources)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DEBLESS=$ROOT/target/release/debless
DISTRO=debian13
# The one-image case, and the peer's image: one image, one tag, one architecture.
IMAGE=python3
IMAGE_ARGS=("$IMAGE" --variant latest --arch amd64)
BENCH_DIR=$(mkdir -p "${BENCH_DIR:-target/bench}" && cd "${BENCH_DIR:-target/bench}" && pwd)
RUNS=${BENCH_RUNS:-3}
QUICK=${BENCH_QUICK:-0}
REPORT=${BENCH_REPORT:-BENCHMARKS.md}
APT_SOURCES=${APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

PROJECT=$BENCH_DIR/project # the scratch project: rules/, snapshots/ and its own lock
MIRROR=$BENCH_DIR/mirror   # <archive>/dists/... and <archive>/pool/..., served over HTTP
SEED_CACHE=$BENCH_DIR/seed-cache
LOCK=$PROJECT/snapshots/$DISTRO.lock
RUNS_LOG=$BENCH_DIR/runs.tsv # every single run, for a second look at the medians

die() {
    echo "bench: $*" >&2
    exit 1
}
say() { echo "bench: $*" >&2; }

# --- tools -------------------------------------------------------------------------------

need() {
    command -v "$1" >/dev/null || die "$1 is missing: install $2 (make bench installs it)"
}
[ -x "$DEBLESS" ] || die "$DEBLESS is missing: run make build (make bench does)"
need python3 python3
python3 -c 'import tomllib' 2>/dev/null || die "python3 is older than 3.11 (no tomllib): install a newer python3"
need apt-get apt
need curl curl
need mmdebstrap mmdebstrap
need umoci umoci
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: install time (make bench installs it)"
[ -f "$KEYRING" ] || die "$KEYRING is missing: install debian-archive-keyring"
[ -f "$APT_SOURCES" ] || die "$APT_SOURCES is missing: set APT_SOURCES to the apt sources naming the Debian mirror"
[ "$(id -u)" = 0 ] || die "mmdebstrap (the peer) needs root: run as root"

# --- clean-up ----------------------------------------------------------------------------

tmp=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------------------

# toml FILE EXPR: evaluate EXPR (Python, over the parsed file `d`); a list prints one item
# a line.
toml() {
    python3 -c 'import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))
r = eval(sys.argv[2])
for x in r if isinstance(r, list) else [r]:
    print(x)' "$1" "$2"
}

# host_mirror ARCHIVE: the host's apt URI serving ARCHIVE (its last path segment), as
# debless itself reads it; security usually lives under a URI of its own.
host_mirror() {
    local uri
    uri=$(awk -v a="$1" 'tolower($1) == "uris:" {
        for (i = 2; i <= NF; i++) {
            u = $i; sub(/\/+$/, "", u); n = split(u, p, "/")
            if (p[n] == a) { print u; exit }
        }
    }' "$APT_SOURCES")
    [ -n "$uri" ] || die "$APT_SOURCES has no URIs: entry for the archive $1"
    echo "$uri"
}

# bytes DIR: apparent size in bytes (hard links counted once), 0 if absent.
bytes() {
    if [ -e "$1" ]; then du -sb "$1" | cut -f1; else echo 0; fi
}

# median N...: the middle value (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# clone_cache SRC DST [no-layers|no-debs]: a copy of a debless cache. The content-addressed
# blobs (sha256/) are only ever replaced by rename, so hard links are safe and cheap;
# anything else (the layer and document caches, lock files) is copied. no-layers leaves out
# the layer and document caches (<cache>/layers/, <cache>/sboms/); no-debs leaves out every
# .deb, keeping only layer blobs.
clone_cache() {
    local src=$1 dst=$2 skip=${3:-} entry blob
    mkdir -p "$dst"
    for entry in "$src"/*; do
        [ -e "$entry" ] || continue
        case "${entry##*/}" in
        sha256)
            if [ "$skip" = no-debs ]; then
                mkdir -p "$dst/sha256"
                for blob in "$entry"/*; do
                    # A .deb is an ar archive; layer blobs are gzip or zstd.
                    [ "$(head -c 7 "$blob" | tr -d '\0')" = '!<arch>' ] || ln "$blob" "$dst/sha256/"
                done
            else
                cp -al "$entry" "$dst/"
            fi
            ;;
        layers | sboms) [ "$skip" = no-layers ] || cp -a "$entry" "$dst/" ;;
        *) cp -a "$entry" "$dst/" ;;
        esac
    done
}

# timed CMD...: run CMD under GNU time. Sets wall (s), rss (KiB, the largest process) and
# written (bytes the process tree wrote to file systems, deleted files included); CMD's
# stdout is left in $tmp/stdout.
timed() {
    local t0=$EPOCHREALTIME
    if ! /usr/bin/time -v -o "$tmp/time" "$@" >"$tmp/stdout" 2>"$tmp/stderr"; then
        tail -n 30 "$tmp/stderr" >&2
        die "failed: $*"
    fi
    wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tmp/time")
    written=$(awk -F': ' '/File system outputs/ { print $2 * 512 }' "$tmp/time")
}

# --- 1. seed: local mirror, scratch project, lock, .debs ---------------------------------

start_mirror() {
    # Port 0: the kernel picks a free one, which http.server then prints.
    rm -f "$BENCH_DIR/server.out"
    python3 -u -m http.server --bind 127.0.0.1 --directory "$MIRROR" 0 \
        >"$BENCH_DIR/server.out" 2>"$BENCH_DIR/server.log" &
    server_pid=$!
    local port="" _
    for _ in $(seq 100); do
        port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$BENCH_DIR/server.out")
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || die "the local mirror did not start; see $BENCH_DIR/server.log"
    MIRROR_URL=http://127.0.0.1:$port/
    say "local mirror at $MIRROR_URL (serving $MIRROR)"
}

# fetch_indices: each suite's InRelease and Packages.xz (per component and architecture)
# from the host's mirror, laid out under both the plain and the by-hash path (apt asks for
# the latter). Packages.xz is fetched by hash, so it matches the InRelease fetched just
# before even if the mirror updates in between.
fetch_indices() {
    local manifest=$PROJECT/snapshots/$DISTRO.toml archive suite comp arch
    local -a comps archs
    read -ra comps <<<"$(toml "$manifest" '" ".join(d["components"])')"
    read -ra archs <<<"$(toml "$manifest" '" ".join(d["architectures"])')"
    while read -r archive suite; do
        local from to
        from=$(host_mirror "$archive")/dists/$suite
        to=$MIRROR/$archive/dists/$suite
        mkdir -p "$to"
        say "indices: $from"
        curl -fsS --retry 3 -o "$to/InRelease" "$from/InRelease" || die "cannot download $from/InRelease"
        for comp in "${comps[@]}"; do
            for arch in "${archs[@]}"; do
                local path=$comp/binary-$arch/Packages.xz hash
                hash=$(awk -v p="$path" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 }
                    s && $3 == p { print $1; exit }' "$to/InRelease")
                [ -n "$hash" ] || die "$from/InRelease lists no $path"
                mkdir -p "$to/$comp/binary-$arch/by-hash/SHA256"
                curl -fsS --retry 3 -o "$to/$path" "$from/$comp/binary-$arch/by-hash/SHA256/$hash" ||
                    curl -fsS --retry 3 -o "$to/$path" "$from/$path" || die "cannot download $from/$path"
                [ "$(sha256sum <"$to/$path" | cut -d' ' -f1)" = "$hash" ] ||
                    die "$from/$path does not match its InRelease (the mirror is updating? run again)"
                ln -f "$to/$path" "$to/$comp/binary-$arch/by-hash/SHA256/$hash"
            done
        done
    done < <(toml "$manifest" '[s["archive"] + " " + s["suite"] for s in d["suites"]]')
}

# link_pool: every .deb in the lock, hard-linked from the seed cache to where the lock
# says the archive keeps it.
link_pool() {
    local archive filename sha256 n=0
    while read -r archive filename sha256; do
        [ -f "$SEED_CACHE/sha256/$sha256" ] || die "$filename ($sha256) is not in $SEED_CACHE after debless fetch"
        mkdir -p "$MIRROR/$archive/$(dirname "$filename")"
        ln -f "$SEED_CACHE/sha256/$sha256" "$MIRROR/$archive/$filename"
        n=$((n + 1))
    done < <(toml "$LOCK" '[" ".join((a[p["suite"]], p["filename"], p["sha256"]))
        for a in [{s["suite"]: s["archive"] for s in d["suite"]}] for p in d["package"]]')
    say "local mirror: $n .debs in the pool"
}

# apt_sources: one apt source line per suite of the lock, each served by the local mirror.
apt_sources() {
    local archive suite comps
    comps=$(toml "$PROJECT/snapshots/$DISTRO.toml" '" ".join(d["components"])')
    while read -r archive suite; do
        echo "deb [signed-by=$KEYRING] $MIRROR_URL$archive $suite $comps"
    done < <(toml "$LOCK" '[s["archive"] + " " + s["suite"] for s in d["suite"]]')
}

# peer_packages: the Debian packages (name=version) in debless's image, from its SPDX
# document: the peer installs exactly these.
peer_packages() {
    say "peer: the package set of $IMAGE, from debless's SBOM"
    rm -rf "$BENCH_DIR/seed-out"
    "$DEBLESS" -q -C "$PROJECT" build --distro "$DISTRO" "${IMAGE_ARGS[@]}" --offline \
        --cache-dir "$SEED_CACHE" --out "$BENCH_DIR/seed-out"
    python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
for p in doc["packages"]:
    if any(r["referenceLocator"].startswith("pkg:deb/") for r in p.get("externalRefs", [])):
        print(p["name"] + "=" + p["versionInfo"])' \
        "$BENCH_DIR/seed-out/$IMAGE-$DISTRO.spdx/latest-amd64.spdx.json" >"$BENCH_DIR/peer-packages.txt"
    [ -s "$BENCH_DIR/peer-packages.txt" ] || die "no Debian packages in the SBOM of $IMAGE"
}

# peer_pool: apt resolves the peer's package set itself and cannot leave out what debless
# excludes (dpkg, debconf, ...). Ask apt, against the local mirror, which .debs it would
# download; fetch those the pool lacks from the host's mirror, checked against the SHA256
# of the signed index. The names apt adds go to peer-extra.txt, for the report.
peer_pool() {
    local d=$tmp/apt url file size hash path n=0
    mkdir -p "$d/etc/apt/apt.conf.d" "$d/etc/apt/preferences.d" "$d/lists/partial" "$d/cache"
    : >"$d/status"
    apt_sources >"$d/etc/apt/sources.list"
    cat >"$d/apt.conf" <<EOF
Dir "$d/";
Dir::State::status "$d/status";
Dir::State::Lists "$d/lists/";
Dir::Cache "$d/cache/";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Install-Recommends "false";
Acquire::Languages "none";
Acquire::ForceHash "SHA256";
APT::Sandbox::User "root";
EOF
    APT_CONFIG=$d/apt.conf apt-get -qq update
    # shellcheck disable=SC2046 # one package a line
    APT_CONFIG=$d/apt.conf apt-get -qq --print-uris install $(cat "$BENCH_DIR/peer-packages.txt") >"$d/uris"
    : >"$BENCH_DIR/peer-extra.txt"
    while read -r url file size hash; do
        url=${url//\'/}
        path=${url#"$MIRROR_URL"}
        path=$(printf '%b' "${path//%/\\x}") # apt's URIs are percent-encoded
        grep -q "^${file%%_*}=" "$BENCH_DIR/peer-packages.txt" || echo "${file%%_*}" >>"$BENCH_DIR/peer-extra.txt"
        [ -f "$MIRROR/$path" ] && continue
        mkdir -p "$MIRROR/$(dirname "$path")"
        curl -fsS --retry 3 -o "$MIRROR/$path" "$(host_mirror "${path%%/*}")/${path#*/}" ||
            die "cannot download $path ($size bytes) from the host's mirror"
        [ "$(sha256sum <"$MIRROR/$path" | cut -d' ' -f1)" = "${hash#SHA256:}" ] ||
            die "$path does not match the signed index"
        n=$((n + 1))
    done <"$d/uris"
    say "peer: apt adds $(wc -l <"$BENCH_DIR/peer-extra.txt") packages; $n .debs downloaded for them"
}

# inputs_digest: what the seed's lock was pinned from (rules/, the manifests, the keys):
# when that changes the seed is made again, so the bench never builds stale rules.
inputs_digest() {
    find rules snapshots/keys snapshots/*.toml -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

seed() {
    local inputs
    inputs=$(inputs_digest)
    if [ "$(cat "$BENCH_DIR/seed.done" 2>/dev/null)" = "$inputs" ] && [ "${BENCH_RESEED:-0}" != 1 ]; then
        say "reusing the seed in $BENCH_DIR (BENCH_RESEED=1 to pin and download again)"
        start_mirror
        return
    fi
    rm -rf "$PROJECT" "$MIRROR" "$SEED_CACHE" "$BENCH_DIR/seed.done"
    mkdir -p "$PROJECT/snapshots" "$MIRROR"
    cp -r rules "$PROJECT/"
    cp snapshots/*.toml "$PROJECT/snapshots/"
    cp -r snapshots/keys "$PROJECT/snapshots/"
    fetch_indices
    start_mirror
    say "pin: $DISTRO against the local mirror"
    "$DEBLESS" -q -C "$PROJECT" pin --distro "$DISTRO" --mirror "$MIRROR_URL" --cache-dir "$SEED_CACHE"
    say "fetch: every .deb of the family from the host's mirror"
    "$DEBLESS" -q -C "$PROJECT" fetch --distro "$DISTRO" --cache-dir "$SEED_CACHE"
    link_pool
    peer_packages
    peer_pool
    echo "$inputs" >"$BENCH_DIR/seed.done"
}

# --- 2. debless: each case in each state ---------------------------------------------------

# The cases: one image, and the whole family (every image, tag and architecture).
CASES=(one family)
[ "$QUICK" = 1 ] && CASES=(one)
case_args() {
    case $1 in
    one) echo "${IMAGE_ARGS[*]}" ;;
    family) echo "" ;;
    esac
}
case_label() {
    case $1 in
    one) echo "$IMAGE" ;;
    family) echo "the family" ;;
    esac
}
STATES=(download cold warm-debs warm layers-only no-op)

# Results, keyed "case/state": median wall time, peak RSS, bytes written, output size,
# cache growth, layers built/reused (if the JSON summary says).
declare -A WALL RSS WRITTEN OUTB CACHEB LAYERS
RUN=$BENCH_DIR/run

# prepare CASE STATE: set cache and out for one run of STATE. Each state starts from what
# the one before it left: the last cold run's cache is the filled cache; the last warm
# run's output is the no-op's.
prepare() {
    local dir=$RUN/$1/$2
    case $2 in
    download | cold)
        rm -rf "$dir" && mkdir -p "$dir/cache"
        cache=$dir/cache out=$dir/out
        ;;
    warm-debs | warm | layers-only)
        local skip=""
        [ "$2" = warm-debs ] && skip=no-layers
        [ "$2" = layers-only ] && skip=no-debs
        rm -rf "$dir" && clone_cache "$RUN/$1/cold/cache" "$dir/cache" $skip
        cache=$dir/cache out=$dir/out
        ;;
    no-op)
        cache=$RUN/$1/warm/cache out=$RUN/$1/warm/out
        ;;
    esac
}

# layer_counts FILE: what a --json summary says about layers built and reused, once
# debless reports it: top-level fields named *layer* (flattened), and numeric per-image
# fields named *layer* (summed), as key=value; "n/a" if there are none.
layer_counts() {
    python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
found = {}
def flat(k, v):
    if isinstance(v, dict):
        for k2, v2 in v.items():
            flat(k + "." + k2, v2)
    elif not isinstance(v, list):
        found[k] = v
for k, v in doc.items():
    if "layer" in k:
        flat(k, v)
for image in doc.get("images", []):
    for k, v in image.items():
        if "layer" in k and isinstance(v, (int, float)) and not isinstance(v, bool):
            found["images." + k] = found.get("images." + k, 0) + v
print(" ".join(f"{k}={v}" for k, v in found.items()) or "n/a")' "$1" 2>/dev/null || echo n/a
}

# measure CASE STATE: BENCH_RUNS runs; records the median wall time and the rest.
measure() {
    local c=$1 s=$2 walls=() peak=0 i before
    local -a args cmd
    read -ra args <<<"$(case_args "$c")"
    for ((i = 1; i <= RUNS; i++)); do
        prepare "$c" "$s"
        if [ "$s" = download ]; then
            cmd=("$DEBLESS" -q -C "$PROJECT" fetch --distro "$DISTRO" --mirror "$MIRROR_URL" --cache-dir "$cache" "${args[@]}")
        else
            cmd=("$DEBLESS" -q -C "$PROJECT" build --distro "$DISTRO" --mirror "$MIRROR_URL" --cache-dir "$cache" --out "$out" --json "${args[@]}")
        fi
        before=$(bytes "$cache")
        timed "${cmd[@]}"
        walls+=("$wall")
        ((rss > peak)) && peak=$rss
        WRITTEN[$c/$s]=$written
        CACHEB[$c/$s]=$(($(bytes "$cache") - before))
        if [ "$s" = download ]; then
            OUTB[$c/$s]=0 LAYERS[$c/$s]=-
        else
            OUTB[$c/$s]=$(bytes "$out") LAYERS[$c/$s]=$(layer_counts "$tmp/stdout")
            cp "$tmp/stdout" "$RUN/$c/$s.json"
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$s" "$i" "$wall" "$rss" "$written" >>"$RUNS_LOG"
        say "$c $s run $i/$RUNS: ${wall}s, peak RSS $((rss / 1024)) MiB"
    done
    WALL[$c/$s]=$(median "${walls[@]}")
    RSS[$c/$s]=$peak
}

# --- 3. determinism ---------------------------------------------------------------------

# determinism CASE: build CASE with 1 and 2 worker threads from the filled .deb cache
# (no layer cache, so every layer is really written twice); every index.json must match.
determinism() {
    local c=$1 j
    local -a args
    read -ra args <<<"$(case_args "$c")"
    for j in 1 2; do
        prepare "$c" warm-debs
        "$DEBLESS" -q -C "$PROJECT" build --distro "$DISTRO" --mirror "$MIRROR_URL" -j "$j" \
            --cache-dir "$cache" --out "$RUN/$c/j$j" "${args[@]}" >/dev/null
        (cd "$RUN/$c/j$j" && sha256sum ./*/index.json) >"$RUN/$c/j$j.sums"
    done
    if cmp -s "$RUN/$c/j1.sums" "$RUN/$c/j2.sums"; then
        DETERMINISM="identical: $(case_label "$c") built with -j 1 and -j 2, $(wc -l <"$RUN/$c/j1.sums") index.json files"
    else
        diff "$RUN/$c/j1.sums" "$RUN/$c/j2.sums" >&2 || true
        die "not deterministic: $c built with -j 1 and -j 2 differs (index.json above)"
    fi
    say "determinism: $DETERMINISM"
}

# --- 3b. compression levels --------------------------------------------------------------

# levels: every gzip and zstd level on the layer tars of the one-image case, with the
# encoders a build uses (examples/compression_levels.rs): why GZIP_LEVEL and ZSTD_LEVEL.
levels() {
    local layout dir=$RUN/levels
    layout=$RUN/one/warm/out/$IMAGE-$DISTRO
    rm -rf "$dir" && mkdir -p "$dir"
    cargo build -q --release --locked --example compression_levels
    python3 -c 'import gzip, json, sys
root, out = sys.argv[1], sys.argv[2]
blob = lambda d: root + "/blobs/" + d["digest"].replace(":", "/")
index = json.load(open(root + "/index.json"))
m = next(m for m in index["manifests"]
         if m["annotations"]["org.opencontainers.image.ref.name"] == "latest-amd64")
for i, l in enumerate(json.load(open(blob(m)))["layers"]):
    open(f"{out}/{i}.tar", "wb").write(gzip.open(blob(l)).read())' "$layout" "$dir"
    LEVELS=$(target/release/examples/compression_levels "$dir"/*.tar)
    say "compression levels measured"
}

# --- 4. the peer: mmdebstrap + umoci ----------------------------------------------------

# The peer's variant is extract: custom runs maintainer scripts, which (Debian policy) may
# use every Essential package (sh, rm, diff, base-passwd's groups, init-system-helpers...),
# so custom needs the whole Essential set, a different image. extract unpacks the same
# packages without scripts, as debless does. BENCHMARKS.md says so.
PEER_VARIANT=extract

# write_peer_script FILE: the peer pipeline as a script of its own (timed as one command,
# and quoted verbatim in the report): mmdebstrap → rootfs.tar → umoci layout.
# shellcheck disable=SC2016 # $out is the written script's own argument
write_peer_script() {
    local codename include sources=()
    codename=$(toml "$PROJECT/snapshots/$DISTRO.toml" 'd["codename"]')
    include=$(paste -sd, "$BENCH_DIR/peer-packages.txt")
    mapfile -t sources < <(apt_sources)
    {
        echo '#!/usr/bin/env bash'
        echo '# The peer: the python3 image with mmdebstrap, then an OCI layout with umoci.'
        echo 'set -euo pipefail'
        echo 'out=$1'
        printf 'mmdebstrap --mode=root --variant=%s --architectures=amd64 \\\n' "$PEER_VARIANT"
        printf "    --include='%s' \\\\\n" "$include"
        echo "    --aptopt='Acquire::Languages \"none\"' \\"
        local p
        for p in doc man locale info lintian linda; do
            printf "    --dpkgopt='path-exclude=/usr/share/%s/*' \\\\\n" "$p"
        done
        printf '    %s "$out/rootfs.tar"' "$codename"
        for p in "${sources[@]}"; do printf " \\\\\n    '%s'" "$p"; done
        echo
        echo 'umoci init --layout "$out/oci"'
        echo 'umoci new --image "$out/oci:latest"'
        echo 'umoci raw add-layer --image "$out/oci:latest" "$out/rootfs.tar"'
    } >"$1"
}

# peer_layer_bytes LAYOUT: the compressed size of the layout's (one) layer.
peer_layer_bytes() {
    python3 -c 'import json, sys
root = sys.argv[1]
blob = lambda d: json.load(open(root + "/blobs/" + d["digest"].replace(":", "/")))
index = json.load(open(root + "/index.json"))
print(sum(l["size"] for l in blob(index["manifests"][0])["layers"]))' "$1"
}

peer() {
    local walls=() peak=0 i dir=$RUN/peer
    write_peer_script "$BENCH_DIR/peer.sh"
    for ((i = 1; i <= RUNS; i++)); do
        rm -rf "$dir" && mkdir -p "$dir"
        timed bash "$BENCH_DIR/peer.sh" "$dir"
        walls+=("$wall")
        ((rss > peak)) && peak=$rss
        WRITTEN[peer]=$written
        OUTB[peer]=$(bytes "$dir")
        printf 'peer\t-\t%s\t%s\t%s\t%s\n' "$i" "$wall" "$rss" "$written" >>"$RUNS_LOG"
        say "peer run $i/$RUNS: ${wall}s, peak RSS $((rss / 1024)) MiB"
    done
    WALL[peer]=$(median "${walls[@]}")
    RSS[peer]=$peak
    PEER_TAR=$(stat -c %s "$dir/rootfs.tar")
    PEER_GZ=$(peer_layer_bytes "$dir/oci")
}

# --- 5. the report ------------------------------------------------------------------------

secs() { awk -v x="$1" 'BEGIN { printf "%.2f s", x }'; }
mib() { awk -v x="$1" 'BEGIN { printf "%.0f MiB", x / 1024 }'; }
mb() { awk -v x="$1" 'BEGIN { printf "%.1f MB", x / 1e6 }'; }
# check VALUE OP LIMIT: pass or FAIL.
check() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = op == "<=" ? v <= l : v >= l; print ok ? "pass" : "**FAIL**" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# json_field CASE STATE EXPR: EXPR (Python, over the parsed --json summary `d`) of a run.
json_field() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$RUN/$1/$2.json" "$3"
}

# target NAME KEY OP LIMIT FIGURE: a row of the targets table, "not measured" without KEY.
target_row() {
    local name=$1 have=$2 value=$3 op=$4 limit=$5 figure=$6
    if [ "$have" = 1 ]; then
        echo "| $name | $figure | $(check "$value" "$op" "$limit") |"
    else
        echo "| $name | not measured (BENCH_QUICK=1) | |"
    fi
}

report() {
    local cpu ram family=0 c s label
    [ "$QUICK" = 1 ] || family=1
    cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
    ram=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    local one_img=${IMAGE_ARGS[*]}
    local deb_tar deb_gz
    deb_tar=$(json_field one warm 'd["images"][0]["uncompressed_bytes"]')
    deb_gz=$(json_field one warm 'd["images"][0]["compressed_bytes"]')
    {
        echo "# Benchmarks"
        echo
        [ -n "${BENCH_NOTE:-}" ] && echo "> **${BENCH_NOTE}**" && echo
        if [ "$QUICK" = 1 ] || [ "$RUNS" -lt 3 ]; then
            echo "> **Preliminary**: BENCH_RUNS=$RUNS, BENCH_QUICK=$QUICK; the full run is \`make bench\`."
            echo
        fi
        echo "Written by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d). Every figure is"
        echo "the median of $RUNS runs. Peak RSS is the largest process's maximum resident set"
        echo "(GNU time), the highest of the runs; *written* is what the process tree wrote to file"
        echo "systems (GNU time's file system outputs, temporary files included); *output* is the"
        echo "size of --out; *cache* is how much the cache grew (sizes from the last run)."
        echo
        echo "## Machine"
        echo
        echo "| | |"
        echo "|---|---|"
        echo "| CPU | $cpu, $(nproc) CPUs |"
        echo "| RAM | $ram |"
        echo "| kernel | $(uname -r) |"
        echo "| rustc | $(rustc --version 2>/dev/null || echo n/a) |"
        echo "| debless | $("$DEBLESS" --version), commit $(git describe --always --dirty) |"
        echo "| peer | mmdebstrap $(mmdebstrap --version | awk '{ print $2 }'), $(umoci --version) |"
        echo "| lock | $DISTRO pinned fresh at $(toml "$LOCK" 'd["timestamp"]'), $(toml "$LOCK" 'len(d["package"])') packages |"
        echo
        echo "## Setup"
        echo
        echo "Everything is served by a local mirror (python3 -m http.server on 127.0.0.1): each"
        echo "suite's signed InRelease and Packages.xz, fetched from the host's Debian mirror at"
        echo "pin time, and every .deb of the lock (plus those apt needs for the peer). debless"
        echo "pins a scratch copy of rules/ and snapshots/ against it, so the committed lock stays."
        echo
        echo '```sh'
        echo "# one image ($one_img); the family is the same without image arguments"
        echo "debless -C PROJECT build --distro $DISTRO --mirror http://127.0.0.1:PORT/ --cache-dir CACHE --out OUT --json $one_img"
        echo "# download: what a cold build must fetch"
        echo "debless -C PROJECT fetch --distro $DISTRO --mirror http://127.0.0.1:PORT/ --cache-dir EMPTY $one_img"
        echo '```'
        echo
        echo "States: *download* is \`debless fetch\` into an empty cache; *cold* is an empty cache"
        echo "and output; *warm-debs* has every .deb cached but an empty layer cache"
        echo "(\`CACHE/layers/\` and \`CACHE/sboms/\` removed), so every layer is read and compressed;"
        echo "*warm* has the full cache of a previous build and an empty output; *layers-only* has"
        echo "the layer cache but not one .deb (a CI job that keeps only the layer cache), and an"
        echo "empty output; *no-op* builds again into the output of the warm build."
        echo
        echo "## Results"
        echo
        echo "| case | state | wall | peak RSS | written | output | cache | layers |"
        echo "|---|---|---:|---:|---:|---:|---:|---|"
        for c in "${CASES[@]}"; do
            label=$(case_label "$c")
            [ "$c" = family ] && label="$label ($(json_field family warm 'len(d["images"])') manifests)"
            for s in "${STATES[@]}"; do
                echo "| $label | $s | $(secs "${WALL[$c/$s]}") | $(mib "${RSS[$c/$s]}") | $(mb "${WRITTEN[$c/$s]}") | $(mb "${OUTB[$c/$s]}") | $(mb "${CACHEB[$c/$s]}") | ${LAYERS[$c/$s]} |"
            done
        done
        echo "| peer ($IMAGE) | cold | $(secs "${WALL[peer]}") | $(mib "${RSS[peer]}") | $(mb "${WRITTEN[peer]}") | $(mb "${OUTB[peer]}") | | |"
        echo
        echo "Determinism: $DETERMINISM (no layer cache, so every layer is written twice)."
        echo
        echo "## Peer: mmdebstrap + umoci, $IMAGE amd64"
        echo
        echo "The peer installs the Debian packages of debless's $IMAGE image (from its SPDX"
        echo "document, pinned to the same versions). apt cannot leave a dependency out, so it adds"
        echo "$(wc -l <"$BENCH_DIR/peer-extra.txt"): $(paste -sd' ' "$BENCH_DIR/peer-extra.txt" | sed 's/ /, /g')."
        echo "mmdebstrap has no cache, so every run downloads from the local mirror, like debless cold."
        echo
        echo "Variant *$PEER_VARIANT*: \`--variant=custom\` runs the maintainer scripts with dpkg, and"
        echo "those may use every Essential package (Debian policy): without them dpkg stops (no sh,"
        echo "rm, diff), and with sh, coreutils and diffutils added base-files' postinst still needs"
        echo "base-passwd's groups and dpkg's needs init-system-helpers. That is the whole Essential"
        echo "set, a different image. *extract* unpacks the same packages without running scripts,"
        echo "which is what debless does too (it generates the few files scripts would write)."
        echo "Signatures are checked with $KEYRING (no \`trusted=yes\`)."
        echo
        echo '```sh'
        sed -e 1,2d -e "s#$MIRROR_URL#http://127.0.0.1:PORT/#g" "$BENCH_DIR/peer.sh"
        echo '```'
        echo
        echo "| | debless cold | debless warm | mmdebstrap + umoci |"
        echo "|---|---:|---:|---:|"
        echo "| wall | $(secs "${WALL[one/cold]}") | $(secs "${WALL[one/warm]}") | $(secs "${WALL[peer]}") |"
        echo "| peer / debless | $(ratio "${WALL[peer]}" "${WALL[one/cold]}")× | $(ratio "${WALL[peer]}" "${WALL[one/warm]}")× | 1× |"
        echo "| peak RSS | $(mib "${RSS[one/cold]}") | $(mib "${RSS[one/warm]}") | $(mib "${RSS[peer]}") |"
        echo "| written | $(mb "${WRITTEN[one/cold]}") | $(mb "${WRITTEN[one/warm]}") | $(mb "${WRITTEN[peer]}") |"
        echo "| image, uncompressed tar | $(mb "$deb_tar") | | $(mb "$PEER_TAR") |"
        echo "| image, compressed layers | $(mb "$deb_gz") | | $(mb "$PEER_GZ") |"
        echo
        echo "## Compression levels"
        echo
        echo "The $IMAGE amd64 image's layer tars through each level of the encoders a build uses"
        echo "(\`cargo run --release --example compression_levels -- LAYER.tar...\`; gzip is cut into"
        echo "1 MiB pieces compressed in parallel, zstd has one worker per thread). Builds use gzip 6"
        echo "(zlib's and Go's default, what registries and runtimes expect) and zstd 3 (libzstd's)."
        echo
        echo "$LEVELS"
        echo
        echo "## Targets"
        echo
        echo "| target | figure | |"
        echo "|---|---|---|"
        target_row "warm whole family ≤ 20 s" $family "${WALL[family/warm]:-0}" "<=" 20 \
            "$(secs "${WALL[family/warm]:-0}")"
        target_row "warm $IMAGE ≤ 1.5 s" 1 "${WALL[one/warm]}" "<=" 1.5 "$(secs "${WALL[one/warm]}")"
        if [ "$family" = 1 ]; then
            target_row "no-op ≤ 1 s (family)" 1 "${WALL[family/no-op]}" "<=" 1 "$(secs "${WALL[family/no-op]}")"
        else
            target_row "no-op ≤ 1 s ($IMAGE)" 1 "${WALL[one/no-op]}" "<=" 1 "$(secs "${WALL[one/no-op]}")"
        fi
        target_row "≥ 5× faster than mmdebstrap + umoci ($IMAGE, both cold)" 1 \
            "$(ratio "${WALL[peer]}" "${WALL[one/cold]}")" ">=" 5 \
            "$(ratio "${WALL[peer]}" "${WALL[one/cold]}")× ($(secs "${WALL[peer]}") vs $(secs "${WALL[one/cold]}"))"
        local peak=0
        for s in "${STATES[@]}"; do
            [ "${RSS[family/$s]:-0}" -gt "$peak" ] && peak=${RSS[family/$s]}
        done
        target_row "peak RSS ≤ 512 MiB (whole family)" $family "$peak" "<=" 524288 "$(mib "$peak")"
        target_row "cold family ≤ download + 20 % (empty .deb cache, layer cache kept)" $family \
            "$(ratio "${WALL[family/layers-only]:-0}" "${WALL[family/download]:-1}")" "<=" 1.2 \
            "$(secs "${WALL[family/layers-only]:-0}") vs download $(secs "${WALL[family/download]:-0}"): $(ratio "${WALL[family/layers-only]:-0}" "${WALL[family/download]:-1}")×"
        target_row "cold family ≤ download + 20 % (empty cache: every layer made)" $family \
            "$(ratio "${WALL[family/cold]:-0}" "${WALL[family/download]:-1}")" "<=" 1.2 \
            "$(secs "${WALL[family/cold]:-0}") vs download $(secs "${WALL[family/download]:-0}"): $(ratio "${WALL[family/cold]:-0}" "${WALL[family/download]:-1}")×"
        echo
        echo "The download target is met when the layer cache survives (the .debs are then not"
        echo "needed at all). Made from nothing, the family is CPU-bound: every layer's .debs are"
        echo "xz-decoded and every layer deflated (about 50 CPU-seconds for debian13), against a"
        echo "download from 127.0.0.1 that takes about a second, so that row compares computing"
        echo "with copying; \`perf\` profiles are in DEVELOPERS.md (*Speed and memory*)."
    } >"$REPORT"
    say "wrote $REPORT"
}

# --- main ---------------------------------------------------------------------------------

started=$EPOCHREALTIME
seed
rm -rf "$RUN"
printf 'case\tstate\trun\twall_s\trss_kib\twritten_bytes\n' >"$RUNS_LOG"
for c in "${CASES[@]}"; do
    for s in "${STATES[@]}"; do
        measure "$c" "$s"
    done
done
determinism "${CASES[-1]}"
levels
peer
report
rm -rf "$RUN"
say "done in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
