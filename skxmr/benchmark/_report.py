"""Formatting and writing the benchmark's results: tables, files, plots."""


import csv
import json
import os
import textwrap

import numpy as np

from ..metrics._table import deprecated_name
from ._table import (
    COLUMNS,
    DEFAULT_METRICS,
    DIRECTIONS,
    MANY_TO_MANY_METRICS,
    OLD_COLUMNS,
    REFERENCE,
    TRANSDUCTIVE_MARK,
)


# ---------------------------------------------------------------- columns
def default_metrics(result):
    """The table's default columns: R-P and mAP@R only where they differ from R@1."""
    return MANY_TO_MANY_METRICS if result["many_to_many"] else DEFAULT_METRICS


def check_columns(metrics):
    """The columns named by ``metrics`` (names of :data:`COLUMNS`).

    Names of the past (``"R@1"``, ``"skew"``, ...) are mapped to their
    columns with a FutureWarning; an unknown name raises ValueError.
    """
    unknown = [m for m in metrics if m not in COLUMNS and m not in OLD_COLUMNS]
    if unknown:
        raise ValueError(f"metrics {unknown} are unknown; choose from {list(COLUMNS)}.")
    for m in metrics:
        if m not in COLUMNS:
            deprecated_name(m, OLD_COLUMNS[m], "the column")
    return [COLUMNS[OLD_COLUMNS.get(m, m)] for m in metrics]


def _key(column, direction=None):
    return f"{direction} {column.name}" if column.per_direction else column.name


def _is_delta(column):
    return column.metric.name == "delta_recall"


def _header(column, direction=None):
    header = column.header + (" [95% CI]" if _is_delta(column) else "")
    return f"{direction} {header}" if direction else header


def _missing(value):
    return value is None or not np.isfinite(value)


def _cell(row, column, direction=None):
    value = row.get(_key(column, direction))
    if _is_delta(column):
        if row.get("reference"):
            return "reference"
        if _missing(value):
            return "—"
        lo, hi = row[f"{direction} {column.name} CI"]
        if _missing(lo) or _missing(hi):
            return f"{value:+.1f} (no interval)"
        mark = "*" if lo > 0 or hi < 0 else " "
        counts = ""
        if len(row.get("splits", ())) > 1 and row.get(f"{direction} gains") is not None:
            counts = f" {row[f'{direction} gains']}↑{row[f'{direction} losses']}↓"
        return f"{value:+.1f} [{lo:+.1f},{hi:+.1f}]{mark}{counts}"
    return "—" if _missing(value) else column.fmt.format(value)


def _label(name, row):
    return f"{name}{TRANSDUCTIVE_MARK}" if row.get("transductive") else name


def _table_cells(result, columns):
    per = [c for c in columns if c.per_direction]
    once = [c for c in columns if not c.per_direction]
    header = ["method"] + [_header(c) for _ in DIRECTIONS for c in per] + [
        _header(c) for c in once]
    flat = ["method"] + [_header(c, d) for d in DIRECTIONS for c in per] + [
        _header(c) for c in once]
    body = [[_label(name, row)] + [_cell(row, c, d) for d in DIRECTIONS for c in per]
            + [_cell(row, c) for c in once] for name, row in result["rows"].items()]
    return per, header, flat, body


def format_table(result, fmt="text", metrics=None):
    """The benchmark table as aligned text, Markdown or reStructuredText.

    Parameters
    ----------
    result : dict
        Of :func:`run_benchmark`.
    fmt : {"text", "md", "rst"}, default="text"
    metrics : sequence of str, default=None
        Names of :data:`COLUMNS`; ``None``: :func:`default_metrics`.
    """
    metrics = default_metrics(result) if metrics is None else tuple(metrics)
    per, header, flat, body = _table_cells(result, check_columns(metrics))
    if fmt == "md":
        lines = ["| " + " | ".join(flat) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(flat) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.strip() for c in r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    if fmt == "rst":
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


def table_notes(result, metrics=None):
    """The lines printed under the table: what ΔR@1's interval is, the marks, the columns."""
    n_splits = result["info"].get("n_splits", 1)
    over = ("the test queries" if n_splits == 1 else
            f"the {n_splits} splits and, within each, the test queries")
    text = (f"ΔR@1: R@1 minus Cosine's, in points, mean over {n_splits} bank/test split(s) "
            f"[95% bootstrap interval over {over}, 1000 resamples, seed 0]; * = the interval "
            "excludes 0"
            + ("; n↑m↓ = splits with a significant gain / loss (each split's paired interval "
               "over its test queries)" if n_splits > 1 else "")
            + ". Columns: skxmr benchmark --help")
    lines = [textwrap.fill(text, width=100, subsequent_indent=" " * 6)]
    if any(row.get("transductive") for row in result["rows"].values()):
        lines.append(f"{TRANSDUCTIVE_MARK} transductive: re-scores with the statistics of all "
                     "test queries at once, not one query at a\n  time; not comparable with the "
                     "other rows for serving, never picked by --save-best")
    relevance = result.get("relevance")
    if metrics is None and relevance:
        several = ", ".join(f"{d} {k} of {n}" for d, (k, n) in relevance.items())
        if result["many_to_many"]:
            lines.append("columns: R-P and mAP@R instead of R@5 and MdR: test queries with "
                         f"several relevant items: {several}")
        elif any(k for k, _ in relevance.values()):
            lines.append("columns: R@5 and MdR kept (few test queries with several relevant "
                         f"items: {several}); --metrics r_precision,map_at_r shows the others")
    return lines


def format_params(result):
    """The chosen parameters of each method, one line per method."""
    lines = []
    for name, row in result["rows"].items():
        if row.get(f"{DIRECTIONS[0]} cv_recall") is None:
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


def _interval(row, column, direction):
    return list(row.get(f"{direction} {column.name} CI", (np.nan, np.nan)))


#: Keys the JSON rows had before their keys became the columns' headers,
#: written beside them for one release: ``{old key: column name}``.
_OLD_JSON_KEYS = {"delta_deg": "degeneration_score", "fit_s": "fit_time",
                  "score_s": "score_time", "tune_s": "tune_time"}


def _columns_json(row):
    """Every column of a row (or of one split's numbers), by header."""
    per = [c for c in COLUMNS.values() if c.per_direction]
    once = [c for c in COLUMNS.values() if not c.per_direction]
    delta = COLUMNS["delta_recall"]
    out = {d: {c.header: _json_value(row.get(_key(c, d))) for c in per} for d in DIRECTIONS}
    out[f"{delta.header} CI"] = {d: _json_value(_interval(row, delta, d)) for d in DIRECTIONS}
    out.update({c.header: _json_value(row.get(c.name)) for c in once})
    return out


def result_rows(result):
    """Rows in the JSON schema of ``--output res.json``: every column, by header.

    ``{"method", "params", "transductive", "q2g": {header: value}, "g2q":
    {...}, "ΔR@1 CI": {direction: [low, high]}, header: value ...,
    "significant": {direction: {"gains", "losses"}}, "splits": [{"seed",
    "params", "q2g": {...}, ...} per split]}``: the per-direction columns
    under their direction, the others at the top; the row's numbers are
    the means over splits, ``"splits"`` holds each split's own. The keys of
    the past (``delta_r1_ci``, ``delta_deg``, ``fit_s``, ``score_s``,
    ``tune_s``, ``cv_r1``) are written too, for one release.
    """
    delta = COLUMNS["delta_recall"]
    rows = []
    for name, row in result["rows"].items():
        out = {"method": name, "params": _json_value(row["params"]),
               "transductive": bool(row.get("transductive", False)), **_columns_json(row)}
        out["significant"] = {d: {"gains": row.get(f"{d} gains"),
                                  "losses": row.get(f"{d} losses")} for d in DIRECTIONS}
        out["splits"] = [{"seed": split["seed"], "params": _json_value(split["params"]),
                          **_columns_json(split)} for split in row.get("splits", ())]
        # the keys of the past, for one release
        out["delta_r1_ci"] = out[f"{delta.header} CI"]
        out.update({old: out[COLUMNS[new].header] for old, new in _OLD_JSON_KEYS.items()})
        if row.get(f"{DIRECTIONS[0]} cv_recall") is not None:
            out["cv_r1"] = {d: out[d][COLUMNS["cv_recall"].header] for d in DIRECTIONS}
        rows.append(out)
    return rows


def _csv_records(result):
    """Header and rows of the CSV file: every column of :func:`result_rows`,
    one line per method and split (``split`` is ``mean`` for the table's row,
    with intervals over splits, and the seed for each split's own)."""
    per = [c for c in COLUMNS.values() if c.per_direction]
    once = [c for c in COLUMNS.values() if not c.per_direction]
    header = ["method", "split", "transductive"]
    for d in DIRECTIONS:
        for c in per:
            header.append(f"{d} {c.header}")
            if _is_delta(c):
                header += [f"{d} {c.header} low", f"{d} {c.header} high"]
    header += [c.header for c in once] + ["params"]

    def record(name, split, transductive, row):
        out = [name, split, transductive]
        for d in DIRECTIONS:
            for c in per:
                out.append(_json_value(row.get(_key(c, d))))
                if _is_delta(c):
                    out += _json_value(_interval(row, c, d))
        out += [_json_value(row.get(c.name)) for c in once]
        return out + [json.dumps(_json_value(row["params"]), ensure_ascii=False)]

    records = []
    for name, row in result["rows"].items():
        transductive = bool(row.get("transductive", False))
        records.append(record(name, "mean", transductive, row))
        records += [record(name, split["seed"], transductive, split)
                    for split in row.get("splits", ())]
    return header, records


def _write_json(result, path, metrics):
    payload = {"dataset": _json_value(result["info"]), "rows": result_rows(result),
               "skipped": result["skipped"]}
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2, ensure_ascii=False)


def _write_csv(result, path, metrics):
    header, records = _csv_records(result)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(records)


def _write_markdown(result, path, metrics):
    table = format_table(result, "md", list(COLUMNS) if metrics is None else metrics)
    with open(path, "w") as fh:
        fh.write(f"dataset: {result['dataset']}\n\n{table}\n")


#: The output writers: ``{suffix: writer(result, path, metrics)}``.
WRITERS = {".json": _write_json, ".csv": _write_csv, ".md": _write_markdown}
OUTPUT_SUFFIXES = tuple(WRITERS)


def write_output(result, path, metrics=None):
    """Write the result to ``path``, by its suffix (:data:`WRITERS`).

    ``.json`` and ``.csv`` carry every column; ``.md`` the columns named by
    ``metrics`` (``None``: every column).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in WRITERS:
        raise ValueError(f"output must end in one of {OUTPUT_SUFFIXES}, got {path!r}.")
    WRITERS[suffix](result, path, metrics)


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
        skew = COLUMNS["hubness_skewness"]
        ax.set_title(f"{name}: {skew.header} {result['rows'][name][skew.name]:.2f}", fontsize=9)
        ax.set_xlabel("N_10 (k-occurrence)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

