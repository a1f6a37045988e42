#!/usr/bin/env bash
# Started by launch.sh: with the training step replayed as a CUDA graph, (1) the paper-ld preset
# for SECONDS_CAP seconds of training steps and (2) the cpu-default preset's model and schedules
# for 3x its steps (14,400), each followed by its test-split evaluation. Writes $W/done.
export W=${W:-/root/s8}
source experiments/gpu_session7/setup.sh || exit 1
SECONDS_CAP=${SECONDS_CAP:-840}
(
    python3 -m pyro_scalor train --preset paper-ld --device cuda --cuda-graph --run-dir "$W/paper-ld" \
        --max-seconds "$SECONDS_CAP" --threads 2 --no-progress > "$W/paper-ld.log" 2>&1
    python3 -m pyro_scalor evaluate "$W/paper-ld" --split test --device cuda --no-progress \
        --json "$W/paper-ld_test.json" --pictures "$W/paper-ld_pictures" >> "$W/paper-ld.log" 2>&1
) &
(
    python3 -m pyro_scalor train --preset cpu-default --device cuda --cuda-graph \
        --run-dir "$W/cpu-default-14400" --steps 14400 --max-seconds "$SECONDS_CAP" \
        --threads 2 --no-progress > "$W/cpu14400.log" 2>&1
    python3 -m pyro_scalor evaluate "$W/cpu-default-14400" --split test --device cuda \
        --no-progress --json "$W/cpu14400_test.json" >> "$W/cpu14400.log" 2>&1
) &
wait
date > "$W/done"
