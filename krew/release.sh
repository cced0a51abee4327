#!/usr/bin/env bash
# Builds the krew release archive of kubectl-supsvc and renders the krew manifest for it.
#
#   krew/release.sh            # writes dist/kubectl-supsvc-v<version>-<target>.tar.gz and dist/supsvc.yaml
#
# The binary is linked statically against musl with rustls (no OpenSSL), as krew plugins written in
# Rust ship, so it runs on any Linux — a Supervisor control plane VM included. The archive holds the
# plugin, its completer kubectl_complete-supsvc (what kubectl 1.26+ runs to complete `kubectl supsvc`;
# krew puts only the plugin on PATH, so the manifest's caveats say how to link it) and LICENSE, as krew
# requires. Check the result with
#   kubectl krew install --manifest dist/supsvc.yaml --archive dist/kubectl-supsvc-*.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
version=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kubectl-supsvc"))')

rustup target add "$target" >/dev/null
if ! command -v musl-gcc >/dev/null 2>&1; then
  apt-get install -y -qq musl-tools >/dev/null  # ring's C code needs a musl C compiler
fi
# The operator's build: core and kube only (--no-default-features leaves out the `demo` simulator
# and the `policy-host` wasmtime; see plugins/Cargo.toml and the README's table of builds),
# stripped as plugins ship.
CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --target "$target" -p kubectl-supsvc --no-default-features

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "target/$target/release/kubectl-supsvc" "target/$target/release/kubectl_complete-supsvc" LICENSE "$stage/"
mkdir -p dist
archive="dist/kubectl-supsvc-v$version-$target.tar.gz"
tar -C "$stage" -czf "$archive" kubectl-supsvc kubectl_complete-supsvc LICENSE
sha=$(sha256sum "$archive" | cut -d' ' -f1)
sed -e "s/@VERSION@/$version/g" -e "s/@SHA256_LINUX_AMD64@/$sha/" krew/supsvc.yaml.tmpl > dist/supsvc.yaml
echo "wrote $archive ($sha) and dist/supsvc.yaml"
