# Sourced by the MPI test scripts (run_mpi_tests.sh, run_mpi_training_tests.sh):
#   mpi_launcher_or_skip HAVE_MPI MPIEXEC
# exits 77 (ctest's SKIP_RETURN_CODE) with a message when the build has no MPI or the launcher
# is missing; else sets the array `launch` to the launcher and the flags this machine needs.
mpi_launcher_or_skip() {
  local have_mpi=$1 mpiexec=$2
  if [ "$have_mpi" != "ON" ]; then
    echo "SKIP: sllm was built without MPI (install openmpi-bin libopenmpi-dev: tools/install_deps.sh, then reconfigure)"
    exit 77
  fi
  if [ -z "$mpiexec" ] || [ ! -x "$mpiexec" ]; then
    echo "SKIP: no MPI launcher (mpirun) found at '$mpiexec'"
    exit 77
  fi
  # OpenMPI refuses more ranks than cores without --oversubscribe (CI has 2 cores) and runs as
  # root only with --allow-run-as-root; other launchers take just -np.
  launch=("$mpiexec")
  if "$mpiexec" --version 2>&1 | grep -qiE "open mpi|openrte|open-mpi"; then  # 4.x mpiexec says OpenRTE
    launch+=(--oversubscribe)
    [ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
  fi
}
