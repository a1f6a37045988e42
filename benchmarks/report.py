"""The benchmark report's summary: ratios between inputs, checks against the targets, a table."""

from __future__ import annotations

from dataclasses import asdict

from pyro_scalor.model.config import MODEL_PRESETS

#: The project's targets for the reference setting (see experiments/speed/).
TARGETS = {"cpu_reference_median_s": 1.2, "vhd_over_ld_max": 1.2}
#: What the reference target is stated for.
REFERENCE_SETTING = {"model_preset": "reference", "batch_size": 4, "frames": 8, "threads": 2}


def _ratio(rows: list[dict], num: str, den: str) -> float | None:
    by_input = {r["input"]: r["step_time_median_s"] for r in rows}
    if num in by_input and den in by_input and by_input[den] > 0:
        return by_input[num] / by_input[den]
    return None


def summarise(report: dict) -> None:
    """Add ``ratios`` (per device) and ``checks`` (against ``targets``) to ``report`` in place.

    Ratios: ``vhd_over_ld`` (dsprites-vhd over dsprites-ld median) and ``fixedN_over_fixedM``
    (largest over smallest fixed count). Checks use the CPU dsprites-ld median for the reference
    target, which applies only to the reference setting (``REFERENCE_SETTING``).
    """
    ratios: dict[str, dict] = {}
    for device in dict.fromkeys(r["device"] for r in report["results"]):
        rows = [r for r in report["results"] if r["device"] == device]
        entry = {"vhd_over_ld": _ratio(rows, "dsprites-vhd", "dsprites-ld")}
        fixed = sorted(
            int(r["input"].split("-", 1)[1]) for r in rows if r["input"].startswith("fixed-")
        )
        if len(fixed) >= 2:
            lo, hi = fixed[0], fixed[-1]
            entry[f"fixed{hi}_over_fixed{lo}"] = _ratio(rows, f"fixed-{hi}", f"fixed-{lo}")
        ratios[device] = entry
    report["ratios"] = ratios
    cpu_rows = {r["input"]: r for r in report["results"] if r["device"] == "cpu"}
    setting = report["config"]["setting"]
    applies = all(setting.get(k) == v for k, v in REFERENCE_SETTING.items()) and (
        report["config"]["model"] == asdict(MODEL_PRESETS["reference"])
    )
    ld = cpu_rows.get("dsprites-ld")
    cpu_median = ld["step_time_median_s"] if ld else None
    vhd_ld = ratios.get("cpu", {}).get("vhd_over_ld")
    report["checks"] = {
        "reference_setting": applies,
        "cpu_reference_median_s": cpu_median,
        "cpu_reference_ok": (
            cpu_median <= TARGETS["cpu_reference_median_s"]
            if applies and cpu_median is not None
            else None
        ),
        "cpu_vhd_over_ld": vhd_ld,
        "cpu_vhd_over_ld_ok": vhd_ld <= TARGETS["vhd_over_ld_max"] if vhd_ld else None,
    }


def format_table(report: dict) -> str:
    """The report as a plain-text table: one line per result, then ratios and target checks."""
    head = (
        f"{'device':<6} {'input':<13} {'obj/frame':>9} {'slots':>5} {'median s':>9} "
        f"{'mean s':>8} {'min s':>7} {'max s':>7} {'peak MiB':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(
            f"{r['device']:<6} {r['input']:<13} {r['objects_per_frame']:>9.1f} "
            f"{r['max_objects']:>5d} {r['step_time_median_s']:>9.3f} "
            f"{r['step_time_mean_s']:>8.3f} {r['step_time_min_s']:>7.3f} "
            f"{r['step_time_max_s']:>7.3f} {r['peak_memory_mb']:>9.1f}"
        )
    s = report["config"]["setting"]
    lines.append(
        f"config {s['model_preset']} (max_objects {s['max_objects']}), batch {s['batch_size']}, "
        f"T {s['frames']}, {s['threads']} CPU threads, {s['warmup_steps']} warm-up + "
        f"{s['timed_steps']} timed steps ({s['order']})"
    )
    for device, ratios in report["ratios"].items():
        text = ", ".join(f"{k} {v:.2f}" for k, v in ratios.items() if v is not None)
        lines.append(f"ratios {device}: {text or 'n/a'}")
    c, t = report["checks"], report["targets"]

    def verdict(ok) -> str:
        return "n/a" if ok is None else "PASS" if ok else "FAIL"

    if c["cpu_reference_median_s"] is not None:
        note = "" if c["reference_setting"] else " (not the reference setting: not checked)"
        lines.append(
            f"target CPU dsprites-ld median <= {t['cpu_reference_median_s']} s: "
            f"{c['cpu_reference_median_s']:.3f} s {verdict(c['cpu_reference_ok'])}{note}"
        )
    if c["cpu_vhd_over_ld"] is not None:
        lines.append(
            f"target CPU vhd/ld <= {t['vhd_over_ld_max']}: {c['cpu_vhd_over_ld']:.2f} "
            f"{verdict(c['cpu_vhd_over_ld_ok'])}"
        )
    return "\n".join(lines)
