#!/usr/bin/env bash
# Stop the one-node test cluster started by tests/slurm/start.sh: cancel its jobs, then stop
# slurmd, slurmctld and (unless --keep-munge) munged. Only the processes named in the daemons'
# pid files are signalled. Idempotent.
set -uo pipefail

RUNDIR=/run/slurm-test
pstate() {  # pstate PID: the process's state letter (Z: a zombie); fails when there is none
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    echo "${stat%% *}"
}
stop_daemon() {  # stop_daemon NAME PIDFILE
    local pid state
    pid=$(cat "$2" 2>/dev/null) || return 0
    state=$(pstate "$pid") || return 0
    [ "${state#Z}" = "$state" ] || return 0  # a zombie: already stopped
    echo "stop.sh: stopping $1 (pid $pid)" >&2
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        state=$(pstate "$pid") || return 0
        [ "${state#Z}" = "$state" ] || return 0
        sleep 0.2
    done
    echo "stop.sh: $1 (pid $pid) did not stop" >&2
}
if command -v scancel >/dev/null 2>&1 && scontrol ping 2>/dev/null | grep -q UP; then
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi
stop_daemon slurmd "$RUNDIR/slurmd.pid"
stop_daemon slurmctld "$RUNDIR/slurmctld.pid"
if [ "${1:-}" != "--keep-munge" ]; then
    stop_daemon munged /run/munge/munged.pid
fi
exit 0
