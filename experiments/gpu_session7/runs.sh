#!/usr/bin/env bash
# Started by launch.sh in the background: six cpu-default sweep variants (larger batches, two
# seeds each) and the two paper-scale presets, all on the one GPU at once, each followed by its
# test-split evaluation. Writes $W/done when all have finished.
source experiments/gpu_session7/setup.sh || exit 1
SECONDS_CAP=${SECONDS_CAP:-900}
R=$W/sweep
for v in p5_b8 p5_b8_seed1 p5_b8_lr42 p5_b8_lr42_seed1 p5_b16 p5_b16_seed1; do
    (
        python3 experiments/cpu_default_sweep/sweep.py "$v" --run-root "$R" --device cuda \
            --threshold 0.5 --track-threshold 0.5 --max-seconds "$SECONDS_CAP" > "$W/$v.log" 2>&1
        python3 experiments/cpu_default_sweep/knobs.py "$R/$v/checkpoint.pt" 0.5:0.5 \
            --split test --sequences 1000 --device cuda > "$W/${v}_test.json" 2>> "$W/$v.log"
    ) &
done
for p in paper-ld paper-md; do
    (
        python3 -m pyro_scalor train --preset "$p" --device cuda --run-dir "$W/$p" \
            --max-seconds "$SECONDS_CAP" --threads 1 --no-progress > "$W/$p.log" 2>&1
        python3 -m pyro_scalor evaluate "$W/$p" --split test --device cuda --no-progress \
            --json "$W/${p}_test.json" --pictures "$W/${p}_pictures" >> "$W/$p.log" 2>&1
    ) &
done
wait
date > "$W/done"
