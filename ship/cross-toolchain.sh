# Sourced by krew/release.sh and webhook/image/build.sh: the cross toolchain both build with, from PyPI
# (pinned): zig (the `ziglang` wheel), the C compiler ring's code needs and the linker of every target,
# and cargo-zigbuild, which has cargo use it. Then the Rust targets "$@" (rustup).
ziglang_version=0.17.1
cargo_zigbuild_version=0.24.1
# A no-op without network when these versions are installed.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  "ziglang==$ziglang_version" "cargo-zigbuild==$cargo_zigbuild_version"
rustup target add "$@" >/dev/null 2>&1 || rustup target add "$@"
# pip's scripts folder may not be on PATH (or behind a pyenv shim not yet made): call it by its path.
cargo_zigbuild="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/cargo-zigbuild"
