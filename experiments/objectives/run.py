"""Objective comparison: elbo, elbo-relaxed, iwae and vimco at an equal time budget.

Each objective trains the ``cpu-default`` configuration of the comparison (see
``train_as_compared.py``) on dsprites-ld with the same seed until ``--budget`` seconds have gone
into training steps (``TrainConfig.max_seconds``, CLI ``train --max-seconds``), then is
evaluated on the test split: tracking metrics on ``--eval-sequences`` sequences and -log p(x)
(importance-weighted, hard presence) with ``--nll-particles`` particles on the first
``--nll-sequences`` sequences, all through the ``pyro-scalor`` CLI. The script writes
``results.json``, ``results.md`` (the table) and ``bound_vs_time.png`` next to itself; a run that
already finished is not trained again (delete its run directory to redo it).

    python experiments/objectives/run.py --budget 480 --eval-sequences 200 \\
        --nll-sequences 8 --nll-particles 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
OBJECTIVES = {"elbo": 1, "elbo-relaxed": 1, "iwae": 5, "vimco": 5}


def sh(cmd: list[str]) -> None:
    """Run a command, echoing it; raise if it fails."""
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def train(name: str, k: int, args) -> Path:
    """Train one objective to the time budget (skipped if done); returns its run directory."""
    run_dir = args.runs / name
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists() and torch.load(ckpt, weights_only=False).get("seconds", 0) >= args.budget:
        return run_dir
    cmd = [sys.executable, str(HERE / "train_as_compared.py"), name, str(k), str(run_dir)]
    cmd += ["--budget", str(args.budget), "--seed", str(args.seed), "--threads", str(args.threads)]
    if args.cache_dir:
        cmd += ["--cache-dir", str(args.cache_dir)]
    sh(cmd)
    return run_dir


def evaluate(name: str, run_dir: Path, args) -> dict:
    """Tracking metrics and NLL of one trained objective (cached in its run directory)."""
    out = run_dir / "eval.json"
    if not out.exists():
        cmd = [sys.executable, "-m", "pyro_scalor", "-q", "evaluate", str(run_dir)]
        cmd += ["--split", "test", "--num-sequences", str(args.eval_sequences), "--nll"]
        cmd += ["--particles", str(args.nll_particles), "--nll-sequences", str(args.nll_sequences)]
        cmd += ["--nll-chunk", str(args.nll_chunk), "--json", str(out), "--no-progress"]
        if args.cache_dir:
            cmd += ["--cache-dir", str(args.cache_dir)]
        sh(cmd)
    return json.loads(out.read_text())


def summarise(name: str, k: int, run_dir: Path, metrics: dict) -> dict:
    """One row of the table, plus the (seconds, bound) curve from the training history."""
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    hist = ckpt["history"]
    return {
        "objective": name,
        "particles": k,
        "steps": ckpt["step"],
        "train_seconds": ckpt["seconds"],
        "seconds_per_step": ckpt["seconds"] / ckpt["step"],
        **metrics,
        "curve": [(e["seconds"], -e["train_loss"]) for e in hist if "seconds" in e],
    }


def paired(rows: list[dict]) -> None:
    """Add each row's NLL difference to the first row's on the same sequences (mean, s.e.)."""
    base = rows[0].get("nll_values")
    for r in rows:
        values = r.get("nll_values")
        if base is None or values is None or len(values) != len(base):
            r["nll_diff"], r["nll_diff_stderr"] = float("nan"), float("nan")
            continue
        d = torch.tensor(values, dtype=torch.float64) - torch.tensor(base, dtype=torch.float64)
        r["nll_diff"] = float(d.mean())
        r["nll_diff_stderr"] = float(d.std() / len(d) ** 0.5) if len(d) > 1 else float("nan")


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    first = rows[0]["objective"]
    head = (
        "| objective | K | steps in budget | s/step | NLL nats/seq (± s.e.) | "
        f"NLL - NLL({first}), paired (± s.e.) | NLL nats/pixel | MOTA | count MAE | precision | "
        "recall |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['objective']} | {r['particles']} | {r['steps']} | {r['seconds_per_step']:.2f} | "
        f"{r['nll_per_sequence']:.0f} ± {r['nll_stderr']:.0f} | "
        f"{r['nll_diff']:.0f} ± {r['nll_diff_stderr']:.0f} | {r['nll_per_pixel']:.3f} | "
        f"{r['mota']:.3f} | {r['count_mae']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Each objective's own training bound (per sequence) against time in training steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r["curve"]:
            t, b = zip(*r["curve"])
            ax.plot(t, b, marker=".", label=f"{r['objective']} (K={r['particles']})")
    ax.set_xlabel("seconds in training steps (2-core CPU)")
    ax.set_ylabel("training bound per sequence (nats; higher is better)")
    ax.set_yscale("symlog", linthresh=1e4)
    ax.set_title("bound against wall-clock time, dsprites-ld, cpu-default, seed 0")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    """Train, evaluate and summarise every objective; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=480.0, help="seconds in training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-sequences", type=int, default=200)
    p.add_argument("--nll-sequences", type=int, default=8)
    p.add_argument("--nll-particles", type=int, default=200)
    p.add_argument("--nll-chunk", type=int, default=50)
    p.add_argument("--runs", type=Path, default=Path("runs/objectives"))
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--only", nargs="*", default=list(OBJECTIVES), choices=list(OBJECTIVES))
    args = p.parse_args(argv)
    rows = []
    for name in args.only:
        run_dir = train(name, OBJECTIVES[name], args)
        rows.append(summarise(name, OBJECTIVES[name], run_dir, evaluate(name, run_dir, args)))
    paired(rows)
    record = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}",
        "settings": {k: str(v) for k, v in vars(args).items()},
        "rows": rows,
    }
    (HERE / "results.json").write_text(json.dumps(record, indent=2))
    (HERE / "results.md").write_text(table(rows))
    plot(rows, HERE / "bound_vs_time.png")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
