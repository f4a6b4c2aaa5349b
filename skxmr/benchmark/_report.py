"""Formatting and writing the benchmark's results: tables, files, plots."""


import csv
import json
import os

import numpy as np

from ._table import DEFAULT_METRICS, DIRECTIONS, MANY_TO_MANY_METRICS, METRICS, OUTPUT_SUFFIXES, REFERENCE
# ---------------------------------------------------------------- output
def default_metrics(result):
    """The table's default columns: R-P and mAP@R only where they differ from R@1."""
    return MANY_TO_MANY_METRICS if result["many_to_many"] else DEFAULT_METRICS


def _cell(row, key, direction=None):
    value = row[f"{direction} {key}"] if direction else row[key]
    if key == "dR@1":
        lo, hi = row[f"{direction} dR@1 CI"]
        if row.get("reference"):
            return "reference"
        if not np.isfinite(value):
            return "—"
        mark = "*" if lo > 0 or hi < 0 else " "
        return f"{value:+.1f} [{lo:+.1f}, {hi:+.1f}]{mark}"
    if value is None or not np.isfinite(value):
        return "—"
    return METRICS[key][1].format(value)


def _table_cells(result, metrics):
    per = [m for m in metrics if METRICS[m][2]]
    once = [m for m in metrics if not METRICS[m][2]]
    header = ["method"] + [METRICS[m][0] for _ in DIRECTIONS for m in per] + [
        METRICS[m][0] for m in once
    ]
    body = []
    for name, row in result["rows"].items():
        body.append([name] + [_cell(row, m, d) for d in DIRECTIONS for m in per]
                    + [_cell(row, m) for m in once])
    return per, once, header, body


def format_table(result, fmt="text", metrics=None):
    """The benchmark table as aligned text, Markdown or reStructuredText.

    Parameters
    ----------
    result : dict
        Of :func:`run_benchmark`.
    fmt : {"text", "md", "rst"}, default="text"
    metrics : sequence of str, default=None
        Keys of :data:`METRICS`; ``None``: :func:`default_metrics`.
    """
    metrics = default_metrics(result) if metrics is None else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics {unknown} are unknown; choose from {list(METRICS)}.")
    per, once, header, body = _table_cells(result, metrics)
    if fmt == "md":
        flat = ["method"] + [f"{d} {METRICS[m][0]}" for d in DIRECTIONS for m in per] + header[
            1 + len(per) * 2:
        ]
        lines = ["| " + " | ".join(flat) + " |", "|" + "|".join(["---"] + ["---:"] * (len(flat) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.strip() for c in r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    if fmt == "rst":
        flat = ["method"] + [f"{d} {METRICS[m][0]}" for d in DIRECTIONS for m in per] + header[
            1 + len(per) * 2:
        ]
        widths = [max(len(c), w) for c, w in zip(flat, widths)]
        rule = "  ".join("=" * w for w in widths)
        return "\n".join([rule, line(flat), rule] + [line(r) for r in body] + [rule])
    # Text: one group label over each direction's columns.
    groups = [""]
    for direction, label in zip(DIRECTIONS, (" q2g: queries -> gallery ",
                                             " g2q: gallery -> queries ")):
        span = sum(widths[1 + i + len(per) * DIRECTIONS.index(direction)] for i in range(len(per)))
        span += 2 * (len(per) - 1)
        groups.append(label.center(span, "-") if span >= len(label) + 2 else direction.center(span, "-"))
    top = (" " * widths[0] + "  " + "  ".join(groups[1:])).rstrip()
    rows = [top, line(header), "-" * len(line(header))] + [line(r) for r in body]
    return "\n".join(rows)


def format_params(result):
    """The chosen parameters of each method, one line per method."""
    lines = []
    for name, row in result["rows"].items():
        if "cv R@1" not in row:
            lines.append(f"{name:<18} defaults (no grid registered)")
            continue
        parts = []
        for direction in DIRECTIONS:
            params = row["params"][direction]
            text = ", ".join(f"{k.split('__')[-1]}={_short(v)}" for k, v in params.items())
            parts.append(f"{direction} {text or 'defaults'}")
        lines.append(f"{name:<18} " + "; ".join(parts))
    return "\n".join(lines)


def _short(value):
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def _json_value(value):
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return repr(value)


def result_rows(result):
    """Rows in the JSON schema of ``--output res.json``."""
    rows = []
    for name, row in result["rows"].items():
        out = {"method": name, "params": _json_value(row["params"])}
        for direction in DIRECTIONS:
            out[direction] = {
                METRICS[m][0]: _json_value(row[f"{direction} {m}"])
                for m in ("R@1", "R@5", "R@10", "MdR", "MnR", "R-P", "mAP@R")
            }
            out[direction]["ΔR@1"] = _json_value(row[f"{direction} dR@1"])
        out["delta_r1_ci"] = {d: _json_value(row[f"{d} dR@1 CI"]) for d in DIRECTIONS}
        out["skew@10"], out["delta_deg"] = _json_value(row["skew"]), _json_value(row["deg"])
        for key in ("gini", "hubs", "antihubs"):
            out[METRICS[key][0]] = _json_value(row[key])
        out["fit_s"], out["score_s"] = _json_value(row["fit"]), _json_value(row["score"])
        out["tune_s"] = _json_value(row["tune"])
        if "cv R@1" in row:
            out["cv_r1"] = _json_value(row["cv R@1"])
        rows.append(out)
    return rows


def write_output(result, path, metrics=None):
    """Write the result to ``path``: ``.json`` (every number), ``.csv`` or ``.md``."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output must end in one of {OUTPUT_SUFFIXES}, got {path!r}.")
    if suffix == ".json":
        payload = {
            "dataset": _json_value(result["info"]),
            "rows": result_rows(result),
            "skipped": result["skipped"],
        }
        with open(path, "w") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
    elif suffix == ".csv":
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            rows = result_rows(result)
            keys = [f"{d} {k}" for d in DIRECTIONS for k in rows[0][d]] if rows else []
            writer.writerow(["method"] + keys + ["q2g ΔR@1 low", "q2g ΔR@1 high",
                                                 "g2q ΔR@1 low", "g2q ΔR@1 high",
                                                 "skew@10", "delta_deg", "fit_s", "score_s",
                                                 "params"])
            for r in rows:
                writer.writerow(
                    [r["method"]] + [r[d][k] for d in DIRECTIONS for k in r[d]]
                    + r["delta_r1_ci"]["q2g"] + r["delta_r1_ci"]["g2q"]
                    + [r["skew@10"], r["delta_deg"], r["fit_s"], r["score_s"],
                       json.dumps(r["params"], ensure_ascii=False)]
                )
    else:
        with open(path, "w") as fh:
            fh.write(f"dataset: {result['dataset']}\n\n{format_table(result, 'md', metrics)}\n")


def plot_hubness(result, path, baseline=REFERENCE):
    """k-occurrence histograms of every method against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["k_occurrence"])
    n = len(names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    base = result["k_occurrence"].get(baseline)
    top = max(int(v.max()) for v in result["k_occurrence"].values()) + 1
    bins = np.arange(top + 1) - 0.5
    for ax, name in zip(axes.ravel(), names):
        if base is not None and name != baseline:
            ax.hist(base, bins=bins, alpha=0.4, label=baseline, color="grey")
        ax.hist(result["k_occurrence"][name], bins=bins, alpha=0.7, label=name)
        ax.set_title(f"{name}: skew {result['rows'][name]['skew']:.2f}", fontsize=9)
        ax.set_xlabel("N_10 (k-occurrence)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

