#!/usr/bin/env bash
# `make run`: the development server with the deadline worker beside it.
# Whichever ends first (Ctrl-C, a crash, a TERM sent to this script) takes the other one down with it,
# so no worker is left running on its own. FLASK may name the flask command (default: the venv's).
set -u

read -r -a flask <<< "${FLASK:-.venv/bin/flask --app webapp}"
pids=()

stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    wait
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop' EXIT

"${flask[@]}" deadlines worker --interval "${COORDINA_WORKER_INTERVAL:-30}" &
pids+=("$!")
"${flask[@]}" run --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" &
pids+=("$!")

wait -n  # the first of the two to end
exit $?
