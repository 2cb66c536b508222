#!/usr/bin/env bash
# Installs the Debian packages the build needs, when they are missing. OpenMPI (openmpi-bin,
# libopenmpi-dev) is for data-parallel runs and their tests (issue 14); the build also works
# without it (SLLM_MPI=AUTO), but `make test` then skips the multi-rank checks.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in cmake g++ make libgtest-dev nlohmann-json3-dev libicu-dev openmpi-bin libopenmpi-dev; do
  have_pkg "$pkg" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "install_deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "install_deps: missing Debian packages: ${need[*]}" >&2
  echo "---> HINT: run as root: sudo sh -c '$cmd'" >&2
  exit 1
fi
