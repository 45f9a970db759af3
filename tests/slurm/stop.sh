#!/usr/bin/env bash
# Stop the one-node test cluster started by tests/slurm/start.sh (slurmd, slurmctld, munged).
# Only the daemons named in start.sh's pid files are stopped. Idempotent.
set -uo pipefail

RUNDIR=/run/slurm-test
stop_daemon() {  # stop_daemon NAME PIDFILE
    local pidfile=$2
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "stop.sh: stopping $1 (pid $(cat "$pidfile"))" >&2
        kill "$(cat "$pidfile")" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.2; done
    fi
}
if command -v scancel >/dev/null 2>&1 && [ -s "$RUNDIR/slurmctld.pid" ]; then
    scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi
stop_daemon slurmd "$RUNDIR/slurmd.pid"
stop_daemon slurmctld "$RUNDIR/slurmctld.pid"
if [ "${1:-}" != "--keep-munge" ]; then
    stop_daemon munged /run/munge/munged.pid
fi
exit 0
