"""K=1000 NLL of the four trained objectives, estimated in ranges of test sequences and merged.

An estimate at K = 1000 costs about a minute per sequence and objective on the 2-core CPU, so
it is run in ranges (``evaluate --nll-start``) and the per-sequence values of every range file
in ``nll_k1000/`` are concatenated. ``run`` estimates one range for every objective; ``table``
merges the ranges (checking they do not overlap) and writes ``nll_k1000/table.md``: the
comparison table with each objective's mean K=1000 NLL, its paired difference to ``elbo`` over
the same sequences, and the steps, step time, MOTA and count MAE of ``results.json``.

    python experiments/objectives/nll_k1000.py run --start 4 --count 4
    python experiments/objectives/nll_k1000.py table
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "nll_k1000"
OBJECTIVES = ("elbo", "elbo-relaxed", "iwae", "vimco")


def run_range(args) -> None:
    """Estimate sequences ``start .. start+count-1`` for every objective (skips finished files)."""
    OUT.mkdir(exist_ok=True)
    for name in OBJECTIVES:
        out = OUT / f"{name}_s{args.start}_n{args.count}.json"
        if out.exists():
            continue
        cmd = [sys.executable, "-m", "pyro_scalor", "-q", "evaluate", str(args.runs / name)]
        cmd += ["--split", "test", "--num-sequences", str(args.start + args.count)]
        cmd += ["--nll", "--particles", str(args.particles), "--nll-chunk", "50"]
        cmd += ["--nll-start", str(args.start), "--nll-sequences", str(args.count)]
        cmd += ["--json", str(out), "--no-progress"]
        if args.cache_dir:
            cmd += ["--cache-dir", str(args.cache_dir)]
        print("$", " ".join(cmd), flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)


def range_files(name: str) -> list[dict]:
    """The JSON of every range file of one objective."""
    return [json.loads(p.read_text()) for p in sorted(OUT.glob(f"{name}_s*_n*.json"))]


def merged(name: str) -> dict[int, float]:
    """Per-sequence NLL values of one objective, keyed by test-sequence index, from all ranges."""
    values: dict[int, float] = {}
    for m in range_files(name):
        start = m.get("nll_start", 0)
        for i, v in enumerate(m["nll_values"], start):
            if i in values:
                raise ValueError(f"{name}: sequence {i} is in two range files")
            values[i] = v
    return values


def mean_se(xs: list[float]) -> tuple[float, float]:
    """Mean and standard error (NaN for one value) of ``xs``."""
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1) / n)


def table(args) -> str:
    """The merged table (markdown) of NLL and paired differences to elbo; also written to disk."""
    base = merged("elbo")
    first = range_files("elbo")[0]
    pixels = round(first["nll_per_sequence"] / first["nll_per_pixel"])  # T*C*H*W
    rows = {r["objective"]: r for r in json.loads((HERE / "results.json").read_text())["rows"]}
    lines = [
        "| objective | K (training) | steps in budget | s/step | NLL nats/seq, K=1000 (± s.e.) "
        "| NLL - NLL(elbo), paired (± s.e.) | nats/pixel | sequences | MOTA | count MAE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in OBJECTIVES:
        vals = merged(name)
        common = sorted(set(vals) & set(base))
        m, se = mean_se([vals[i] for i in sorted(vals)])
        d, dse = mean_se([vals[i] - base[i] for i in common])
        r = rows[name]
        lines.append(
            f"| {name} | {r['particles']} | {r['steps']} | {r['seconds_per_step']:.2f} | "
            f"{m:.0f} ± {se:.0f} | {d:.0f} ± {dse:.0f} | {m / pixels:.3f} | {len(vals)} | "
            f"{r['mota']:.3f} | {r['count_mae']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    (OUT / "table.md").write_text(text)
    return text


def main(argv=None) -> int:
    """CLI: ``run`` one range or print and write the merged ``table``; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("run", "table"))
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--particles", type=int, default=1000)
    p.add_argument("--runs", type=Path, default=Path("runs/objectives"))
    p.add_argument("--cache-dir", type=Path)
    args = p.parse_args(argv)
    if args.what == "run":
        run_range(args)
    print(table(args), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
