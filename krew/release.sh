#!/usr/bin/env bash
# Builds the krew release archives of kubectl-supsvc for every platform krew lists and renders the krew
# manifest for them:
#
#   krew/release.sh          # dist/kubectl-supsvc-v<version>-<target>.tar.gz (5), dist/sha256sums.txt,
#                            # dist/supsvc.yaml
#
# Environment: SUPSVC_DIST (output folder, default dist), SUPSVC_RELEASE_PROFILE (cargo profile, default
# release; tests/tests/release_archives.rs builds with the cheaper `release-check`), SUPSVC_RELEASE_TARGETS
# (a space-separated subset of the targets below), SOURCE_DATE_EPOCH (archive timestamps, default the
# last commit's: the same commit gives the same archives and digests).
#
# Targets (krew's os/arch): x86_64-unknown-linux-musl (linux/amd64), aarch64-unknown-linux-musl
# (linux/arm64), x86_64-apple-darwin (darwin/amd64), aarch64-apple-darwin (darwin/arm64),
# x86_64-pc-windows-gnu (windows/amd64). Linux builds link musl statically, so they run on any Linux, a
# Supervisor control plane VM included. All five are cross-compiled on Linux with cargo-zigbuild and
# zig, both from PyPI (pinned in ship/cross-toolchain.sh): zig is the C compiler ring's code needs and
# the linker of every target. macOS builds link Security and CoreFoundation (the system trust store that kube's
# rustls verifier and rustls-native-certs read) against the link-time stubs in krew/macos-frameworks
# instead of Xcode's SDK, which cannot be installed on Linux.
#
# Each archive holds the plugin, its completer kubectl_complete-supsvc (what kubectl 1.26+ runs to
# complete `kubectl supsvc`; krew puts only the plugin on PATH, so the manifest's caveats say how to
# link it) and LICENSE, as krew requires; `.exe` on Windows. Check one with
#   kubectl krew install --manifest dist/supsvc.yaml --archive dist/kubectl-supsvc-v*-<target>.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=${SUPSVC_DIST:-dist}
profile=${SUPSVC_RELEASE_PROFILE:-release}
all_targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu"
targets=${SUPSVC_RELEASE_TARGETS:-$all_targets}

version=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="kubectl-supsvc"))')
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

# krew's platform selector (os_arch) of a Rust target.
platform() {
  case "$1" in
    x86_64-unknown-linux-musl) echo linux_amd64 ;;
    aarch64-unknown-linux-musl) echo linux_arm64 ;;
    x86_64-apple-darwin) echo darwin_amd64 ;;
    aarch64-apple-darwin) echo darwin_arm64 ;;
    x86_64-pc-windows-gnu) echo windows_amd64 ;;
    *) echo "error: unknown target $1" >&2
       echo "hint: SUPSVC_RELEASE_TARGETS takes some of: $all_targets" >&2
       exit 1 ;;
  esac
}
for target in $targets; do platform "$target" >/dev/null; done

# zig and cargo-zigbuild from PyPI, and the Rust targets.
# shellcheck disable=SC2086
. ship/cross-toolchain.sh $targets

# The operator's build: core and kube only (--no-default-features leaves out the `demo` simulator
# and the `policy-host` wasmtime; see plugins/Cargo.toml and the README's table of builds), stripped as
# plugins ship. Link-time stub frameworks for macOS (see above).
frameworks="-Clink-arg=-F$root/krew/macos-frameworks"
build_args=()
for target in $targets; do build_args+=(--target "$target"); done
CARGO_PROFILE_RELEASE_STRIP=symbols \
CARGO_TARGET_X86_64_APPLE_DARWIN_RUSTFLAGS="$frameworks" \
CARGO_TARGET_AARCH64_APPLE_DARWIN_RUSTFLAGS="$frameworks" \
  "$cargo_zigbuild" zigbuild --locked --profile "$profile" "${build_args[@]}" -p kubectl-supsvc --no-default-features

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
mkdir -p "$dist"
rm -f "$dist"/kubectl-supsvc-v*.tar.gz "$dist/sha256sums.txt" "$dist/supsvc.yaml"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
manifest=$(cat krew/supsvc.yaml.tmpl)
manifest=${manifest//@VERSION@/$version}
for target in $targets; do
  exe=
  case "$target" in *windows*) exe=.exe ;; esac
  out="$target_dir/$target/$profile_dir"
  rm -rf "${stage:?}"/*
  cp "$out/kubectl-supsvc$exe" "$out/kubectl_complete-supsvc$exe" LICENSE "$stage/"
  archive="kubectl-supsvc-v$version-$target.tar.gz"
  # Reproducible: sorted names, fixed owner and times, no name or time in the gzip header.
  tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -cf - "kubectl-supsvc$exe" "kubectl_complete-supsvc$exe" LICENSE | gzip -9n > "$dist/$archive"
  sha=$(sha256sum "$dist/$archive" | cut -d' ' -f1)
  echo "$sha  $archive" >> "$dist/sha256sums.txt"
  key=$(platform "$target" | tr '[:lower:]' '[:upper:]')
  manifest=${manifest//@SHA256_$key@/$sha}
  echo "$archive $(stat -c %s "$dist/$archive") bytes sha256 $sha"
done
printf '%s\n' "$manifest" > "$dist/supsvc.yaml"
if grep -q '@SHA256_' "$dist/supsvc.yaml"; then
  echo "note: $dist/supsvc.yaml lacks the digests of the targets not built (SUPSVC_RELEASE_TARGETS)" >&2
fi
echo "wrote $dist/sha256sums.txt and $dist/supsvc.yaml"
