#!/usr/bin/env bash
# Installs the Debian packages the build needs, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# OpenMPI (openmpi-bin, libopenmpi-dev) is optional: data-parallel runs and their tests
# (issue 14). As root it is installed with the rest; otherwise, when it alone is missing, the
# script says so and succeeds: the build leaves MPI out (SLLM_MPI=AUTO) and the MPI tests skip.
set -euo pipefail

need=()
optional=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in cmake g++ make libgtest-dev nlohmann-json3-dev libicu-dev; do
  have_pkg "$pkg" || need+=("$pkg")
done
for pkg in openmpi-bin libopenmpi-dev; do
  have_pkg "$pkg" || optional+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

all=("${need[@]}" "${optional[@]}")
cmd="apt-get update && apt-get install -y --no-install-recommends ${all[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "install_deps: installing ${all[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${all[@]}"
elif [ ${#need[@]} -eq 0 ]; then
  echo "install_deps: optional OpenMPI packages missing (${optional[*]}): building without MPI, the multi-rank tests skip" >&2
  echo "---> HINT: for data-parallel runs: sudo sh -c '$cmd'" >&2
else
  echo "install_deps: missing Debian packages: ${all[*]}" >&2
  echo "---> HINT: run as root: sudo sh -c '$cmd'" >&2
  exit 1
fi
