#!/usr/bin/env bash
# Progress of the background runs: last log lines and the step of each checkpoint.
export W=${W:-/root/s8}
source experiments/gpu_session7/setup.sh > /dev/null || exit 1
date; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for r in paper-ld cpu-default-14400; do
    python3 - "$W/$r/checkpoint.pt" <<'PY' 2>/dev/null
import sys, torch
c = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
h = c["history"][-1] if c["history"] else {}
print(sys.argv[1], "step", c["step"], "seconds %.0f" % c["seconds"], "loss %.0f" % h.get("train_loss", float("nan")))
PY
done
tail -n 3 "$W"/*.log
ls "$W"
