#!/usr/bin/env bash
# Last command: wait until the runs are done (at most $1 seconds), then pack the scores, logs,
# pictures and checkpoints (optimizer state dropped from the sweep runs') into $OUT in chunks.
source experiments/gpu_session7/setup.sh || exit 1
end=$((SECONDS + ${1:-300}))
while [ ! -f "$W/done" ] && [ $SECONDS -lt $end ]; do sleep 10; done
bash experiments/gpu_session7/progress.sh
mkdir -p "$W/pack"
python3 - <<'PY'
import glob, os, torch
W = os.environ["W"]
for c in glob.glob(f"{W}/sweep/*/checkpoint.pt"):
    ck = torch.load(c, map_location="cpu", weights_only=False)
    ck.pop("optimizer", None)
    os.makedirs(f"{W}/pack/{c.split('/')[-2]}", exist_ok=True)
    torch.save(ck, f"{W}/pack/{c.split('/')[-2]}/checkpoint.pt")
PY
cd "$W"
tar czf "$W/pack.tgz" --exclude='*/tb' *.json *.log *.txt sweep/*/eval_*.json pack \
    2>/dev/null
ls -la "$W/pack.tgz"
split -b 15M -d "$W/pack.tgz" "$OUT/pack.tgz.part"
ls -la "$OUT"
