#!/usr/bin/env bash
# Builds the supsvc-webhook container image without a container daemon, as an OCI image layout that
# umoci (Debian's package) assembles:
#
#   webhook/image/build.sh   # dist/image/oci (the layout, tag <version>), dist/image/digest,
#                            # dist/image/reference (ghcr.io/supsvc/supsvc-webhook:<version>@sha256:...)
#
# Publish it with skopeo, digest unchanged:
#   skopeo copy --preserve-digests oci:dist/image/oci:<version> docker://ghcr.io/supsvc/supsvc-webhook:<version>
#
# The image (linux/amd64, what Supervisor nodes run):
#   /usr/local/bin/supsvc-webhook   the entrypoint, linked statically against musl (no libc in the image)
#   /policies/supsvc_registry_guard.wasm, /policies/supsvc_storage_guard.wasm
#                                   the shipped policies (wasm-release profile), where
#                                   webhook/deploy/configmap.yaml's config.yaml loads them from
#   /etc/passwd, /etc/group         the user nonroot, 65532:65532, which the image runs as
# Nothing in it is written at run time: it runs with a read-only root filesystem, the configuration in
# /etc/supsvc-webhook, TLS in /tls and compiled modules in /var/cache/supsvc-webhook mounted by
# webhook/deploy/deployment.yaml. Port 8443 (HTTPS: /validate/..., /readyz, /healthz, /metrics).
#
# Environment: SUPSVC_IMAGE_OUT (default dist/image), SUPSVC_IMAGE_PROFILE (cargo profile of the
# webhook, default release; tests/tests/webhook_image.rs uses release-check), SUPSVC_IMAGE_NAME (default
# ghcr.io/supsvc/supsvc-webhook), SOURCE_DATE_EPOCH (the image's times, default the last commit's:
# the same commit and binaries give the same digest).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${SUPSVC_IMAGE_OUT:-dist/image}
profile=${SUPSVC_IMAGE_PROFILE:-release}
name=${SUPSVC_IMAGE_NAME:-ghcr.io/supsvc/supsvc-webhook}
target=x86_64-unknown-linux-musl
version=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="supsvc-webhook"))')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)

for tool in umoci skopeo; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$tool"
  fi
done
. ship/cross-toolchain.sh "$target" wasm32-unknown-unknown

# The webhook, static (musl), and the policies as the tests build them.
"$cargo_zigbuild" zigbuild --locked --profile "$profile" --target "$target" -p supsvc-webhook --bin supsvc-webhook
cargo build --locked --profile wasm-release --target wasm32-unknown-unknown \
  -p supsvc-registry-guard -p supsvc-storage-guard
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug

umask 022
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
chmod 0755 "$rootfs"
install -D -m 0755 "$target_dir/$target/$profile_dir/supsvc-webhook" "$rootfs/usr/local/bin/supsvc-webhook"
for policy in supsvc_registry_guard supsvc_storage_guard; do
  install -D -m 0644 "$target_dir/wasm32-unknown-unknown/wasm-release/$policy.wasm" "$rootfs/policies/$policy.wasm"
done
mkdir -p "$rootfs/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
find "$rootfs" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

rm -rf "$out/oci"
mkdir -p "$out"
layout="$out/oci"
umoci init --layout "$layout"
umoci new --image "$layout:$version"
# One layer: the files above, owned by root (the image's user can read and run them, not change them).
umoci insert --image "$layout:$version" --history.created "$created" \
  --history.created_by "webhook/image/build.sh (supsvc-webhook $version, policies)" "$rootfs" /
labels=(
  "org.opencontainers.image.title=supsvc-webhook"
  "org.opencontainers.image.description=A validating admission webhook running WASM policies (Kubewarden's waPC protocol) for vSphere Supervisors"
  "org.opencontainers.image.source=https://github.com/supsvc/supsvc"
  "org.opencontainers.image.version=$version"
  "org.opencontainers.image.revision=$revision"
  "org.opencontainers.image.licenses=Apache-2.0"
  "org.opencontainers.image.created=$created"
)
config_args=(--no-history --image "$layout:$version" --created "$created" --author "supsvc maintainers"
  --os linux --architecture amd64 --config.user 65532:65532
  --config.entrypoint /usr/local/bin/supsvc-webhook --config.workingdir /
  --config.exposedports 8443/tcp --config.env SUPSVC_WEBHOOK_CONFIG=/etc/supsvc-webhook/config.yaml)
for label in "${labels[@]}"; do
  config_args+=(--config.label "$label" --manifest.annotation "$label")
done
umoci config "${config_args[@]}"
umoci gc --layout "$layout"

digest=$(python3 - "$layout" "$version" <<'PY'
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
print(next(m["digest"] for m in index["manifests"]
           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]))
PY
)
echo "$digest" > "$out/digest"
echo "$name:$version@$digest" > "$out/reference"
echo "wrote $layout ($name:$version), digest $digest"
