"""Compute the benchmark tables included by ``reproducing.rst`` at build time."""

import sys

from skxmr.benchmark import format_params, format_table, run_benchmark

# name -> (title, tuned tables too)
DATASETS = {
    "coco-clip": ("COCO val2017, CLIP ViT-B/16 (500 pairs, bundled)", True),
    "msrvtt-videoclip": ("MSR-VTT, VideoCLIP (100 pairs)", True),
    "synthetic": ("Synthetic (make_retrieval_problem, 1000 pairs)", False),
}


def _table(result):
    rst = format_table(result, fmt="rst")
    return (
        f"*{result['dataset']}*\n\n"
        + ".. table::\n   :class: benchmark\n\n"
        + "\n".join("   " + line for line in rst.splitlines())
    )


def write_tables(folder):
    folder.mkdir(exist_ok=True)
    for name, (title, tuned) in DATASETS.items():
        for tune in (False, True) if tuned else (False,):
            out = folder / (f"{name}-tuned.rst" if tune else f"{name}.rst")
            try:
                result = run_benchmark(name, tune=tune)
                body = _table(result)
                if tune:
                    params = format_params(result).splitlines()
                    body += "\n\nChosen parameters (bank CV; over the splits the most frequent):\n\n" + "\n".join(
                        f"* ``{line}``" for line in params
                    )
            except (OSError, ValueError) as exc:
                print(f"build_tables: {name} unavailable: {exc}", file=sys.stderr)
                body = (
                    f".. note::\n\n   The {title} embeddings were not in the data cache when "
                    "these pages were built (set ``SKXMR_DATA`` or allow the download)."
                )
            out.write_text(body + "\n")
