#!/usr/bin/env bash
# Where the background runs stand: the step of each checkpoint, the logs' last lines, the GPU.
source experiments/gpu_session7/setup.sh || exit 1
date
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
python3 - <<'PY'
import glob, os, torch
W = os.environ["W"]
for c in sorted(glob.glob(f"{W}/sweep/*/checkpoint.pt") + glob.glob(f"{W}/paper-*/checkpoint.pt")):
    ck = torch.load(c, map_location="cpu", weights_only=False)
    print(c.split("/")[-2], "step", ck["step"], "seconds", round(ck["seconds"]))
PY
for f in "$W"/*.log; do echo "== $f"; tail -n 3 "$f"; done
ls "$W"/*_test.json 2>/dev/null && cat "$W"/*_test.json
[ -f "$W/done" ] && echo "ALL DONE $(cat "$W/done")"
