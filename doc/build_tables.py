"""Compute the benchmark tables included by ``reproducing.rst`` at build time."""

import sys

from skxmr.benchmark import format_table, run_benchmark

DATASETS = {
    "coco-clip": "COCO val2017, CLIP ViT-B/16 (500 pairs)",
    "msrvtt-videoclip": "MSR-VTT, VideoCLIP (100 pairs)",
    "synthetic": "Synthetic (make_retrieval_problem, 1000 pairs)",
}


def write_tables(folder):
    folder.mkdir(exist_ok=True)
    for name, title in DATASETS.items():
        try:
            result = run_benchmark(name)
            body = (
                f"*{result['dataset']}*\n\n"
                + ".. table::\n   :class: benchmark\n\n"
                + "\n".join("   " + line for line in format_table(result, fmt="rst").splitlines())
            )
        except (OSError, ValueError) as exc:
            print(f"build_tables: {name} unavailable: {exc}", file=sys.stderr)
            body = (
                f".. note::\n\n   The {title} embeddings were not in the data cache when "
                "these pages were built (set ``SKXMR_DATA`` or allow the download)."
            )
        (folder / f"{name}.rst").write_text(body + "\n")
