"""Print the Table 1 page's rows (markdown) from the metrics files of ``rows.sh``.

    python experiments/tracking_density/table.py experiments/tracking_density/*.json

Each file is ``pyro-scalor evaluate --json`` output named ``<trained on>_on_<tracked on>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def row(path: Path) -> str:
    m = json.loads(path.read_text())
    trained, tested = path.stem.split("_on_")
    nll = m.get("nll_per_sequence")
    found = m.get("found_by_frame")
    found_s = " / ".join(pct(f) for f in found) if found else "-"
    return (
        f"| {tested} | {trained} | {m['max_objects']} | {m['num_sequences']} | "
        f"{'-' if nll is None else f'{nll:.0f}'} | {pct(m['recall'])} | {pct(m['precision'])} | "
        f"{pct(m['mota'])} | {m['motp_px']:.2f} | {m.get('box_iou', 1 - m['motp']):.3f} | "
        f"{m['count_mae']:.3f} | {pct(m['propagated_fraction'])} | {found_s} |"
    )


def main() -> None:
    print(
        "| tracked on | trained on | K | sequences | NLL | recall % | precision % | MOTA % | "
        "MOTP px | box IoU | count MAE | propagated % | found by t=0/1/2 % |"
    )
    print("|" + "---|" * 13)
    for p in sorted(Path(a) for a in sys.argv[1:]):
        if "_on_" in p.stem and not p.stem.startswith("errors_"):
            print(row(p))


if __name__ == "__main__":
    main()
