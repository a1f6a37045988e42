#!/usr/bin/env bash
# First command on the GPU machine (repo root, .whl carried): check CUDA, a smoke run, the
# datasets, the GPU benchmark, then start the training runs in the background (runs.sh).
source experiments/gpu_session7/setup.sh || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, pyro; print(torch.__version__, pyro.__version__, torch.cuda.is_available())"
nproc
python3 -m pyro_scalor train --preset smoke --device cuda --run-dir "$W/smoke" --no-progress \
    || exit 1
python3 - <<'PY' || exit 1
import time
from concurrent.futures import ProcessPoolExecutor
from pyro_scalor.data.cache import load_or_generate
from pyro_scalor.data.presets import get_preset
JOBS = [("dsprites-ld", "train", 10000), ("dsprites-ld", "val", 100),
        ("dsprites-ld", "test", 1000), ("dsprites-md", "train", 10000),
        ("dsprites-md", "test", 1000)]
def gen(job):
    t = time.time()
    load_or_generate(get_preset(job[0]), job[1], job[2])
    return job, round(time.time() - t, 1)
with ProcessPoolExecutor(5) as ex:
    for job, s in ex.map(gen, JOBS):
        print("generated", job, s, "s")
PY
# the benchmark first, with nothing else on the machine
timeout 300 python3 -m pyro_scalor bench --device cuda --json "$W/bench_cuda.json" \
    --profile "$W/bench_cuda_profile.txt" 2>&1 | tail -30
cp "$W/bench_cuda.json" "$OUT/" 2>/dev/null
setsid nohup bash experiments/gpu_session7/runs.sh > "$W/runs.log" 2>&1 < /dev/null &
sleep 60
bash experiments/gpu_session7/progress.sh
