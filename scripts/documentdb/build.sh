#!/usr/bin/env bash
# npm run db:build: builds the local database engine, Microsoft DocumentDB
# (PostgreSQL 15 extensions pg_documentdb_core + pg_documentdb, and the Rust
# gateway that speaks the MongoDB wire protocol), from pinned sources, Debian
# packages and crates only. Idempotent: when the installed engine matches the
# pinned sources, the patches and this script, it says so and stops.
#
# Sources: ../shared/vendor/documentdb/ beside the project when it exists
# (checked against its SHA256SUMS), otherwise a shallow git fetch of each
# pinned commit from its public repository. Patches: patches/documentdb/.
# Outputs: the extensions in PostgreSQL 15's own directories (root needed),
# the gateway in .cache/documentdb/bin/. Details: docs/documentdb.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${DOCUMENTDB_CACHE:-$root/.cache/documentdb}
build=$cache/build
vendor=${DOCUMENTDB_VENDOR:-$root/../shared/vendor/documentdb}
patches=$root/patches/documentdb
pg_config=/usr/lib/postgresql/15/bin/pg_config
gateway_bin=$cache/bin/documentdb_gateway
stamp=$cache/installed.stamp
jobs=${JOBS:-$(nproc)}

# name | tarball in the vendor folder | repository | commit (git archive of it)
SOURCES=(
  "documentdb|documentdb-b2e220c4.tar.gz|https://github.com/microsoft/documentdb.git|b2e220c47d85ec6fed1651f03968da2317f71c10"
  "pgvector|pgvector-0.8.0.tar.gz|https://github.com/pgvector/pgvector.git|2627c5ff775ae6d7aef0c430121ccf857842d2f2"
  "pg_cron|pg_cron-1.6.3.tar.gz|https://github.com/citusdata/pg_cron.git|9d0576c64edd90fb3d8ac30763296a8106315638"
)
PACKAGES=(
  postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 postgresql-15-rum
  libbson-dev libpcre2-dev libintelrdfpmath-dev libkrb5-dev libssl-dev pkg-config
  build-essential openssl git ca-certificates curl
)

started=$(date +%s)
elapsed () { local s=$(( $(date +%s) - $1 )); if (( s < 60 )); then echo "${s}s"; else printf '%dm %02ds' $((s / 60)) $((s % 60)); fi; }
# step NAME FUNCTION: runs it, then prints how long it took and the time so far.
step () {
  local t0; t0=$(date +%s)
  echo "==> $1"
  "$2"
  echo "<== $1: $(elapsed "$t0") (total $(elapsed "$started"))"
}
is_root () { [[ $(id -u) == 0 ]]; }
installed () { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# What the installed engine was built from: the pins, the patches and this script.
fingerprint () {
  { printf '%s\n' "${SOURCES[@]}"; cat "$patches"/*.patch "${BASH_SOURCE[0]}"; } | sha256sum | cut -d' ' -f1
}
up_to_date () {
  [[ -f $stamp && -x $gateway_bin && -x $pg_config ]] || return 1
  local libdir; libdir=$($pg_config --pkglibdir)
  [[ -f $libdir/pg_documentdb.so && -f $libdir/pg_documentdb_core.so && -f $libdir/pg_cron.so && -f $libdir/vector.so ]] || return 1
  [[ $(head -1 "$stamp") == "$(fingerprint)" ]] || return 1
  # The stamp also records the checksum of each library it installed: a later install over them is seen.
  (cd "$libdir" && tail -n +2 "$stamp" | sha256sum -c --quiet - >/dev/null 2>&1)
}

apt_packages () {
  local missing=() p
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  if (( ${#missing[@]} == 0 )); then echo "all ${#PACKAGES[@]} present"; return; fi
  if ! is_root; then
    echo "Missing Debian packages. Run once, then npm run db:build again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Debian's packaging would start a stock cluster; policy-rc.d answers 101 (do not start) meanwhile.
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  (( created == 0 )) || rm -f "$policy"
  # Debian's pg_cron is 1.4.2, which refuses the '2 seconds' schedule DocumentDB registers; 1.6.3 is built below.
  if installed postgresql-15-cron; then DEBIAN_FRONTEND=noninteractive apt-get remove -y -q postgresql-15-cron; fi
}

# Extracts (or fetches) one pinned source into $build/NAME.
source_of () {
  local name=$1 tarball=$2 repository=$3 commit=$4 dir=$build/$1
  if [[ -f $dir/.commit && $(cat "$dir/.commit") == "$commit" ]]; then echo "$name at ${commit:0:10}"; return; fi
  rm -rf "$dir"; mkdir -p "$dir"
  if [[ -d $vendor ]]; then
    (cd "$vendor" && grep " $tarball\$" SHA256SUMS | sha256sum -c -)
    tar -xzf "$vendor/$tarball" -C "$dir" --strip-components=1
  else
    echo "$vendor not found: fetching $repository at $commit"
    git -C "$dir" init -q
    git -C "$dir" fetch -q --depth 1 "$repository" "$commit"
    git -C "$dir" checkout -q FETCH_HEAD
    [[ $(git -C "$dir" rev-parse HEAD) == "$commit" ]] || { echo "fetched the wrong commit of $name" >&2; exit 1; }
    rm -rf "$dir/.git"
  fi
  echo "$commit" > "$dir/.commit"
}
sources () {
  mkdir -p "$build"
  local line
  for line in "${SOURCES[@]}"; do IFS='|' read -r name tarball repository commit <<< "$line"; source_of "$name" "$tarball" "$repository" "$commit"; done
}

# Applies each patch once; a source re-extracted loses its patches, and its marker with them.
apply_patches () {
  local patch name
  for patch in "$patches"/*.patch; do
    name=$(basename "$patch")
    if [[ -f $build/documentdb/.patched-$name ]]; then echo "$name: applied"; continue; fi
    patch -d "$build/documentdb" -p1 --forward --quiet < "$patch"
    touch "$build/documentdb/.patched-$name"
    echo "$name: applied now"
  done
}

check_install_rights () {
  local libdir; libdir=$($pg_config --pkglibdir)
  if [[ ! -w $libdir ]]; then
    echo "Installing the extensions writes to $libdir and $($pg_config --sharedir)/extension. Run: sudo npm run db:build" >&2
    exit 1
  fi
}

# Debian's libbson 1.23 lacks two names of the 1.28 DocumentDB pins, and PGXS would compile
# every file again as LLVM bitcode without these flags (with_llvm=no). docs/documentdb.md.
COMPAT="-Dbson_as_legacy_extended_json=bson_as_json -DBSON_SUBTYPE_SENSITIVE=0x08 -Wno-error=switch"
make_pg () { nice -n 10 make -s -j"$jobs" PG_CONFIG=$pg_config with_llvm=no "$@"; }

pgvector () { make_pg -C "$build/pgvector" OPTFLAGS="" && make -C "$build/pgvector" PG_CONFIG=$pg_config install >/dev/null; }
pg_cron () { make_pg -C "$build/pg_cron" && make -C "$build/pg_cron" PG_CONFIG=$pg_config with_llvm=no install >/dev/null; }

# Debian's libintelrdfpmath-dev is the decimal library DocumentDB builds itself; it needs a .pc file.
intelmath_pc () {
  mkdir -p "$build/pkgconfig"
  cat > "$build/pkgconfig/intelmathlib.pc" <<'EOF'
prefix=/usr
libdir=/usr/lib/x86_64-linux-gnu
includedir=/usr/include
Name: intelmathlib
Description: Intel decimal floating point library (Debian libintelrdfpmath-dev)
Version: 2.0u2
Cflags: -I${includedir}
Libs: -L${libdir} -lbidgcc000
EOF
}

extension () {
  intelmath_pc
  # The build's version script asks git for a version; it must not find the project's repository.
  export GIT_CEILING_DIRECTORIES=$build PKG_CONFIG_PATH=$build/pkgconfig
  local part
  for part in pg_documentdb_core pg_documentdb; do
    make_pg -C "$build/documentdb/$part" "COPT=$COMPAT"
    make -C "$build/documentdb/$part" PG_CONFIG=$pg_config with_llvm=no "COPT=$COMPAT" install >/dev/null
  done
}

gateway () {
  (cd "$build/documentdb/pg_documentdb_gw" && CARGO_BUILD_JOBS=$jobs nice -n 10 cargo build --release --locked)
  install -D -m 0755 "$build/documentdb/pg_documentdb_gw/target/release/documentdb_gateway" "$gateway_bin"
}

write_stamp () {
  local libdir; libdir=$($pg_config --pkglibdir)
  { fingerprint; (cd "$libdir" && sha256sum pg_documentdb.so pg_documentdb_core.so pg_cron.so vector.so); } > "$stamp"
  echo "engine: $($pg_config --pkglibdir)/pg_documentdb.so, gateway: $gateway_bin"
}

if [[ ${FORCE:-0} != 1 ]] && up_to_date; then
  echo "DocumentDB is built and installed (gateway: $gateway_bin); FORCE=1 rebuilds it."
  exit 0
fi
command -v cargo >/dev/null || { echo "The gateway needs Rust's cargo: https://rustup.rs, then npm run db:build again." >&2; exit 1; }
echo "Building DocumentDB (first build on 2 cores: about 6 minutes, most of it the gateway's cargo build)"
step "Debian packages" apt_packages
check_install_rights
step "sources" sources
step "patches" apply_patches
step "pgvector 0.8.0" pgvector
step "pg_cron 1.6.3" pg_cron
step "DocumentDB extensions" extension
step "gateway (cargo build --release)" gateway
write_stamp
echo "DocumentDB built in $(elapsed "$started")."
