#!/usr/bin/env bash
# Copy the results back under $OUT: test metrics, histories (no weights), pictures, logs.
export W=${W:-/root/s8}
source experiments/gpu_session7/setup.sh > /dev/null || exit 1
cp "$W"/*_test.json "$W"/*.log "$OUT/" 2>/dev/null
cp -r "$W/paper-ld_pictures" "$OUT/" 2>/dev/null
for r in paper-ld cpu-default-14400; do
    python3 - "$W/$r/checkpoint.pt" "$OUT/${r}_history.json" <<'PY'
import json, sys, torch
c = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
json.dump({"step": c["step"], "seconds": c["seconds"], "history": c["history"]}, open(sys.argv[2], "w"))
c.pop("optimizer")  # weights and configs only: enough to track and evaluate here
torch.save(c, sys.argv[2].replace("_history.json", "_nets.pt"))
PY
done
ls -la "$OUT"
