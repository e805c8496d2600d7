#!/usr/bin/env bash
# Usage: plugins/render-krew.sh VERSION DIST
# Prints plugins/volguard.yaml for release VERSION (X.Y.Z), with the sha256 of every archive in DIST, as
# the release's binaries job writes them (volguard-VERSION-TARGET.tar.gz.sha256, `shasum -a 256` output).
# Fails when an archive the manifest names has no checksum.
set -euo pipefail
version=$1
dist=$2
manifest=$(sed "s/@VERSION@/$version/g" "$(dirname "$0")/volguard.yaml")
for sum in "$dist/volguard-$version-"*.tar.gz.sha256; do
  [ -e "$sum" ] || break
  target=${sum##*/volguard-"$version"-}
  target=${target%.tar.gz.sha256}
  sha=$(cut -d ' ' -f 1 "$sum")
  manifest=${manifest//"@SHA256:$target@"/$sha}
done
missing=$(grep -o '@SHA256:[^@]*@' <<<"$manifest" || true)
if [ -n "$missing" ]; then
  echo "no checksum in $dist for: $(tr '\n' ' ' <<<"$missing")" >&2
  exit 1
fi
printf '%s\n' "$manifest"
