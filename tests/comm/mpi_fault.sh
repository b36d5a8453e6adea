#!/bin/sh
# mpi_fault.sh MPIEXEC PROGRAM NP MODE: runs `MPIEXEC -np NP PROGRAM MODE` (rank 1 fails, see
# mpi_fault.c) and checks that the job ends within 30 seconds, not by our timeout, with a
# non-zero status and a message naming rank 1. (timeout's status 124 means it hung; mpirun
# itself exits 137 when a rank was killed by SIGKILL.)
set -u
mpiexec=$1 prog=$2 np=$3 mode=$4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
timeout 60 "$mpiexec" --oversubscribe -np "$np" "$prog" "$mode" >"$out" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$out"
echo "mpi_fault: mode $mode, $np ranks: exit status $rc after ${elapsed}s"
if [ "$rc" = 0 ]; then
  echo "FAIL: the job exited 0 although rank 1 failed"; exit 1
fi
if [ "$rc" = 124 ] || [ "$elapsed" -ge 30 ]; then
  echo "FAIL: the job hung (killed by the test's timeout or took ${elapsed}s)"; exit 1
fi
case "$mode" in
  # mpirun: "process rank 1 with PID ... exited on signal 9 (Killed)"
  kill) want="rank 1 with PID .* signal 9" ;;
  # the plugin's exit handler, before MPI_Abort(status) (whose own message Open MPI 4.1
  # sometimes loses, so it is not required here)
  *) want="lamina_comm_mpi: rank 1 of $np exits with status 3, aborting the MPI job" ;;
esac
if ! grep -q "$want" "$out"; then
  echo "FAIL: no message naming the rank ('$want')"; exit 1
fi
echo "ok"
