#!/usr/bin/env bash
# Re-fetches the third-party files of the web page from npm at the pinned versions below into
# ingest-server/web/vendor/<package>-<version>/ (the dist file and the package's LICENSE), checks
# each tarball against the pinned integrity, and removes other versions' directories. The files
# are committed and compiled into the server with include_bytes! (ingest-server/src/web.rs):
# cargo build needs neither npm nor the network, and the page loads nothing from a CDN.
#
# To upgrade: change a version (and its integrity: `npm view <pkg>@<version> dist.integrity`),
# run this script; it rewrites the versioned paths in index.html, app.js and src/web.rs. Then
# `cargo test -p ingest-server web::` (checks every file index.html references is served) and the
# browser test (tests/e2e/test_browser.py).
#
# Usage: ingest-server/web/update-vendor.sh        (needs node/npm and access to the npm registry)
set -euo pipefail

WEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC_RS="$WEB_DIR/../src/web.rs"

# package  version  integrity (sha512 of the npm tarball)  dist file in the package
PACKAGES=(
  "hls.js 1.7.4 sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg== dist/hls.min.js"
  "aws4fetch 1.0.20 sha512-/djoAN709iY65ETD6LKCtyyEI04XIBP5xVvfmNxsEP0uJB5tyaGBztSryRr4HqMStr9R06PisQE7m9zDTXKu6g== dist/aws4fetch.esm.mjs"
)

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for entry in "${PACKAGES[@]}"; do
  read -r name version integrity dist <<<"$entry"
  echo "==> $name@$version"
  (cd "$TMP" && npm pack --silent "$name@$version" >/dev/null)
  tarball="$TMP/$name-$version.tgz"
  [ -f "$tarball" ] || { echo "npm pack did not produce $tarball" >&2; exit 1; }
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$integrity" ]; then
    echo "integrity mismatch for $name@$version: expected $integrity, got $actual" >&2
    exit 1
  fi
  echo "    integrity $actual"
  rm -rf "$TMP/package"
  tar -xzf "$tarball" -C "$TMP"
  dest="$WEB_DIR/vendor/$name-$version"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$TMP/package/$dist" "$dest/"
  license="$(find "$TMP/package" -maxdepth 1 -iname 'LICEN[CS]E*' | head -1)"
  [ -n "$license" ] || { echo "$name@$version has no LICENSE file" >&2; exit 1; }
  cp "$license" "$dest/LICENSE"
  # Other versions of the same package: remove them and point the sources at this one.
  for old in "$WEB_DIR/vendor/$name"-*; do
    [ "$old" = "$dest" ] && continue
    [ -d "$old" ] || continue
    old_dir="$(basename "$old")"
    case "$old_dir" in "$name"-[0-9]*) ;; *) continue ;; esac
    echo "    replacing $old_dir with $name-$version"
    rm -rf "$old"
    sed -i "s#vendor/$old_dir/#vendor/$name-$version/#g" \
      "$WEB_DIR/index.html" "$WEB_DIR/app.js" "$SRC_RS"
  done
  echo "    -> vendor/$name-$version/$(basename "$dist"), vendor/$name-$version/LICENSE"
done
