#!/usr/bin/env bash
# The Table 1 page's rows: each model tracked on its own test split and, with the capacity raised,
# on denser or unseen scenes. Run from the repository root after training the run presets:
#   python3 -m pyro_scalor main --preset cpu-ld         (also: cpu-md, cpu-10-15, cpu-mnist-0-5)
# then: bash experiments/tracking_density/rows.sh [ROW ...]   (default: every row)
set -euo pipefail
D=experiments/tracking_density
E="python3 -m pyro_scalor evaluate --no-progress"
NLL="--nll --particles 100 --nll-sequences 10 --nll-chunk 50"
declare -A ROWS=(
  [ld_on_dsprites-ld]="runs/cpu-ld --data dsprites-ld $NLL"
  [ld_on_dsprites-md]="runs/cpu-ld --data dsprites-md"
  [ld_on_dsprites-hd]="runs/cpu-ld --data dsprites-hd --max-objects 80 --num-sequences 100"
  [ld_on_dsprites-vhd]="runs/cpu-ld --data dsprites-vhd --max-objects 128 --num-sequences 100"
  [ld_on_dsprites-ld-long]="runs/cpu-ld --data dsprites-ld-long"
  [md_on_dsprites-md]="runs/cpu-md --data dsprites-md $NLL --pictures $D/pictures/md"
  [md_on_dsprites-hd]="runs/cpu-md --data dsprites-hd --max-objects 80 --num-sequences 100 --pictures $D/pictures/hd"
  [md_on_dsprites-vhd]="runs/cpu-md --data dsprites-vhd --max-objects 128 --num-sequences 100 --pictures $D/pictures/vhd"
  [10-15_on_dsprites-10-15]="runs/cpu-10-15 --data dsprites-10-15"
  [10-15_on_dsprites-50-60]="runs/cpu-10-15 --data dsprites-50-60 --max-objects 80 --num-sequences 100"
  [10-15_on_dsprites-hd]="runs/cpu-10-15 --data dsprites-hd --max-objects 80 --num-sequences 100"
  [10-15_on_dsprites-vhd]="runs/cpu-10-15 --data dsprites-vhd --max-objects 128 --num-sequences 100"
  [mnist-0-5_on_mnist-0-5]="runs/cpu-mnist-0-5 --data mnist-0-5"
  [mnist-0-5_on_mnist-6-9]="runs/cpu-mnist-0-5 --data mnist-6-9"
  [mnist-0-5_on_mnist-md]="runs/cpu-mnist-0-5 --data mnist-md --pictures $D/pictures/mnist-md"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${!ROWS[@]}")
for name in "${names[@]}"; do
  [ -n "${ROWS[$name]:-}" ] || { echo "unknown row $name; rows: ${!ROWS[*]}" >&2; exit 2; }
  echo "== $name"
  # shellcheck disable=SC2086
  $E ${ROWS[$name]} --json "$D/$name.json"
done
python3 "$D/table.py" "$D"/*.json
