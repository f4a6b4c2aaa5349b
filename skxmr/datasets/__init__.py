"""Paired cross-modal embeddings: a synthetic generator, real-data fetchers, splits.

- :func:`make_retrieval_problem`: two modalities from a shared latent with a
  modality gap, a narrow cone and hub items; any size, the offline default;
  with ``n_query_features``/``distortion`` the queries come from a second
  encoder (:func:`second_encoder`), for the alignment family.
- :func:`load_coco_clip`: 500 real COCO CLIP pairs bundled with the package
  (MIT licence), the offline default of the benchmark and the examples.
- :func:`fetch_coco_clip`, :func:`fetch_msrvtt_videoclip`: small real
  galleries (CLIP on COCO, VideoCLIP on MSR-VTT), downloaded once with a
  SHA-256 check into :func:`get_data_home` (env ``SKXMR_DATA``);
  :func:`fetch_embeddings` does the same for any file named by URL and SHA-256.
- :func:`make_multiplicity_problem`: items as Gaussian clouds whose shape
  carries their category (the calibration family's synthetic set).
- :func:`bank_test_split`: split paired rows by item into a training bank and
  a test set, with no item on both sides.
"""

from ._fetchers import (
    fetch_coco_clip,
    fetch_embeddings,
    fetch_msrvtt_videoclip,
    get_data_home,
    load_coco_clip,
)
from ._multiplicity import make_multiplicity_problem
from ._split import bank_test_split
from ._synthetic import make_retrieval_problem, second_encoder

__all__ = [
    "bank_test_split",
    "fetch_coco_clip",
    "fetch_embeddings",
    "fetch_msrvtt_videoclip",
    "get_data_home",
    "load_coco_clip",
    "make_multiplicity_problem",
    "make_retrieval_problem",
    "second_encoder",
]
