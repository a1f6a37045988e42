#!/usr/bin/env bash
# Second command: start the training runs in the background (runs.sh), then report progress.
export W=${W:-/root/s8}
source experiments/gpu_session7/setup.sh || exit 1
setsid nohup bash experiments/gpu_session8/runs.sh > "$W/runs.log" 2>&1 < /dev/null &
sleep 90
bash experiments/gpu_session8/progress.sh
sleep "${WAIT:-0}"
bash experiments/gpu_session8/progress.sh
