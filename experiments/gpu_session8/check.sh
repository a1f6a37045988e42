#!/usr/bin/env bash
# First command on the GPU machine (repo root, .whl carried): the CUDA-graph tests, then the
# benchmark eager and graphed on the same machine (reference config; cpu-default model).
export W=${W:-/root/s8}
source experiments/gpu_session7/setup.sh || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, pyro; print(torch.__version__, pyro.__version__, torch.cuda.is_available())"
python3 -m pytest -q -p no:cacheprovider tests/test_train_graphed.py 2>&1 | tail -25
B="python3 -m pyro_scalor bench --device cuda"
CPU="--model-preset cpu --max-objects 12 --frames 4 --presets dsprites-ld --fixed-counts"
for mode in ${MODES:-eager graph}; do
    flag=$([ $mode = graph ] && echo --cuda-graph)
    timeout 200 $B $flag --json "$OUT/bench_cuda_$mode.json" 2>&1 | tail -7
    timeout 100 $B $flag $CPU --json "$OUT/bench_cuda_cpumodel_$mode.json" 2>&1 | tail -3
done
