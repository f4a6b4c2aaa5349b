"""Loading the benchmark's paired embeddings: files, bundled and fetched sets."""


import os
import pickle
import zipfile

import numpy as np
from sklearn.utils import Bunch

from .._pairs import item_groups, pair, split_pairs
from ._table import DATASETS, EMBEDDING_SUFFIXES
# ------------------------------------------------------------------ data
def load_embeddings(path, key=None, *, name="embeddings"):
    """A 2-D float array from ``.npy``, ``.npz`` (``key``) or torch ``.pt``.

    Parameters
    ----------
    path : str or path-like
    key : str, default=None
        The array inside an ``.npz`` archive or a ``.pt`` dict; may be
        omitted when the file holds exactly one.
    name : str, default="embeddings"
        What the file is, for error messages (``"--queries"``).

    Returns
    -------
    array : ndarray
        As stored (float arrays keep their dtype; torch tensors become NumPy).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise ValueError(f"{name} {path!r} must end in one of {EMBEDDING_SUFFIXES}.")
    if suffix == ".npy":
        if key is not None:
            raise ValueError(f"{name} {path!r} is a .npy file: it has no key {key!r}.")
        return _read(np.load, path, name, "a .npy array", allow_pickle=False)
    if suffix == ".npz":
        archive = _read(np.load, path, name, "a .npz archive", allow_pickle=False)
        with archive:
            arrays = {k: _read(archive.__getitem__, k, name, f"array {k!r} of {path!r}")
                      for k in archive.files}
        return _pick(arrays, key, name, path)
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{name} {path!r} is a torch file, but torch is not installed "
            "(pip install 'skxmr[torch]')."
        ) from None
    obj = _read(torch.load, path, name, "a torch file of tensors", map_location="cpu",
                weights_only=True)
    if isinstance(obj, dict):
        obj = _pick(obj, key, name, path)
    elif key is not None:
        raise ValueError(f"{name} {path!r} holds one tensor, not a dict with key {key!r}.")
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{name} {path!r} holds a {type(obj).__name__}, not a tensor.")
    return obj.detach().cpu().numpy()


def _read(load, path, name, what, **kwargs):
    """``load(path, **kwargs)``; a file it cannot read raises one line
    naming the file and the problem (not the loader's traceback or advice)."""
    try:
        return load(path, **kwargs)
    except (OSError, EOFError, ValueError, RuntimeError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            problem = "no such file"
        elif isinstance(exc, EOFError) or os.path.isfile(path) and os.path.getsize(path) == 0:
            problem = "the file is empty"
        elif what.endswith(".npy array") and not _starts_with(path, b"\x93NUMPY"):
            problem = "no NumPy header: not a file written by numpy.save"
        elif "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            problem = "it holds Python objects (pickled data), not numbers"
        elif isinstance(exc, pickle.UnpicklingError):
            problem = ("corrupt, or not only tensors: it must hold a tensor or a dict of "
                       "tensors written by torch.save")
        else:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            problem = f"{type(exc).__name__}: {lines[0] if lines else 'unreadable'}"
            problem = problem if len(problem) <= 120 else problem[:117] + "..."
        raise ValueError(f"{name} {os.fspath(path)!r} cannot be read as {what} ({problem}).") \
            from None


def _starts_with(path, magic):
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _pick(arrays, key, name, path):
    if key is None:
        if len(arrays) != 1:
            raise ValueError(
                f"{name} {path!r} holds {sorted(arrays)}; say which with its key option "
                f"(e.g. {name}-key)."
            )
        return next(iter(arrays.values()))
    if key not in arrays:
        raise ValueError(f"{name} {path!r} has no key {key!r}; it holds {sorted(arrays)}.")
    return arrays[key]


def _labels(path, n, name):
    if path is None:
        return None
    y = load_embeddings(path, name=name)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} {path!r} must hold one label per row ({n}), got shape {y.shape}.")
    return y


def load_files(
    queries,
    gallery,
    *,
    queries_key=None,
    gallery_key=None,
    labels=None,
    bank_size=0.5,
    random_state=0,
    n_splits=1,
    bank_queries=None,
    bank_gallery=None,
    bank_labels=None,
):
    """Bank and test pairs from a user's embedding files.

    Row ``i`` of the queries file pairs with row ``i`` of the gallery file;
    duplicate rows are one item. Without explicit banks the pairs are split
    by item (:func:`skxmr._pairs.item_groups`) into a bank and a test set;
    with ``bank_queries`` and ``bank_gallery`` the given files are the test
    set.

    Parameters
    ----------
    queries, gallery : str or path-like
        ``.npy``, ``.npz`` or ``.pt`` files of shape (n_pairs, d).
    queries_key, gallery_key : str, default=None
        Array names inside ``.npz`` / ``.pt`` files (also used for the bank files).
    labels : str or path-like, default=None
        One label per pair: relevance becomes "same label".
    bank_size : float or int, default=0.5
        Fraction (or number) of the items in the bank when splitting.
    random_state : int, default=0
        Seed of the first split; split ``s`` uses ``random_state + s``.
    n_splits : int, default=1
        Number of random bank/test splits (:func:`random_splits`); explicit
        bank files are one split.
    bank_queries, bank_gallery : str or path-like, default=None
        Explicit bank pairs (both or neither).
    bank_labels : str or path-like, default=None
        Labels of the bank pairs (tuning then scores with label relevance).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_bank, X_test, y_bank, y_test, groups_bank`` (of the first
        split), ``splits`` (one Bunch of those five and ``seed`` per split),
        ``description, info``.
    """
    X, width = _read_pairs(queries, gallery, queries_key, gallery_key, "--queries", "--gallery")
    y = _labels(labels, X.shape[0], "--labels")
    if (bank_queries is None) != (bank_gallery is None):
        raise ValueError("give both --bank-queries and --bank-gallery, or neither.")
    if bank_queries is None:
        if bank_labels is not None:
            raise ValueError("--bank-labels needs --bank-queries and --bank-gallery.")
        groups = item_groups(X, n_query_features=width)
        splits = random_splits(X, groups, y, bank_size=bank_size, random_state=random_state,
                               n_splits=n_splits)
        how = f"split by item (bank {bank_size}, {_seeds(random_state, n_splits)})"
    else:
        X_bank, bank_width = _read_pairs(
            bank_queries, bank_gallery, queries_key, gallery_key, "--bank-queries", "--bank-gallery"
        )
        if (X_bank.shape[1], bank_width) != (X.shape[1], width):
            raise ValueError(
                f"the bank files have widths {bank_width} + {X_bank.shape[1] - bank_width}, "
                f"the test files {width} + {X.shape[1] - width}; they must match."
            )
        y_bank = _labels(bank_labels, X_bank.shape[0], "--bank-labels")
        groups_bank = item_groups(X_bank, n_query_features=width)
        splits = [Bunch(X_bank=X_bank, X_test=X, y_bank=y_bank, y_test=y,
                        groups_bank=groups_bank, seed=None)]
        how = "explicit bank files"
    data = _bunch(splits, f"{os.fspath(queries)} -> {os.fspath(gallery)} ({how})", name="files")
    # Equal halves split at the middle by default; other widths are passed on.
    data.n_query_features = None if 2 * width == X.shape[1] else width
    data.info.update(
        queries=os.fspath(queries), gallery=os.fspath(gallery),
        labels=None if labels is None else os.fspath(labels),
        bank_queries=None if bank_queries is None else os.fspath(bank_queries),
        bank_gallery=None if bank_gallery is None else os.fspath(bank_gallery),
        bank_size=bank_size if bank_queries is None else None, random_state=random_state,
    )
    return data


def _read_pairs(q_path, g_path, q_key, g_key, q_name, g_name):
    Q = load_embeddings(q_path, q_key, name=q_name)
    G = load_embeddings(g_path, g_key, name=g_name)
    for A, name, path in ((Q, q_name, q_path), (G, g_name, g_path)):
        where = f"{name} {os.fspath(path)!r}"
        if A.ndim != 2 or not np.issubdtype(A.dtype, np.floating):
            raise ValueError(
                f"{where} must hold a 2-D float array (one embedding per row), got "
                f"{A.dtype} of shape {A.shape}."
            )
        if A.shape[0] == 0 or A.shape[1] == 0:
            raise ValueError(f"{where} holds no embeddings (shape {A.shape}).")
        bad = np.flatnonzero(~np.isfinite(A).all(axis=1))
        if bad.size:
            raise ValueError(f"{where} has {bad.size} row(s) with NaN or infinity "
                             f"(first: row {bad[0]}).")
        zero = np.flatnonzero(~A.any(axis=1))
        if zero.size:
            raise ValueError(
                f"{where} has {zero.size} all-zero row(s) of {A.shape[0]} (first: row "
                f"{zero[0]}); an embedding needs a direction for cosine similarity."
            )
    if Q.shape[0] != G.shape[0]:
        raise ValueError(
            f"{q_name} has {Q.shape[0]} rows but {g_name} has {G.shape[0]}; row i of "
            "each must form a matching pair."
        )
    return pair(Q, G), Q.shape[1]


def random_splits(X, groups, y=None, *, bank_size=0.5, random_state=0, n_splits=1):
    """Repeated random bank/test splits of paired rows, by item.

    Split ``s`` is :func:`~skxmr.datasets.bank_test_split` with seed
    ``random_state + s``: every split puts a fresh random half (or
    ``bank_size``) of the items in the bank, so the spread of a method's
    score over splits shows how much the verdict depends on which items
    happened to be held out.

    Parameters
    ----------
    X : ndarray of shape (n_pairs, n_features)
    groups : ndarray of shape (n_pairs,)
        Item id of each row.
    y : ndarray of shape (n_pairs,), default=None
        Labels, split with the rows.
    bank_size : float or int, default=0.5
    random_state : int, default=0
    n_splits : int, default=1

    Returns
    -------
    splits : list of sklearn.utils.Bunch
        ``X_bank, X_test, y_bank, y_test, groups_bank, seed`` per split.
    """
    from ..datasets import bank_test_split

    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits!r}.")
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an integer seed, got {random_state!r}.")
    splits = []
    for seed in range(int(random_state), int(random_state) + int(n_splits)):
        X_bank, X_test, groups_bank, _ = bank_test_split(
            X, groups, bank_size=bank_size, random_state=seed
        )
        mask = np.isin(groups, groups_bank)
        y_bank, y_test = (None, None) if y is None else (y[mask], y[~mask])
        splits.append(Bunch(X_bank=X_bank, X_test=X_test, y_bank=y_bank, y_test=y_test,
                            groups_bank=groups_bank, seed=seed))
    return splits


def _seeds(random_state, n_splits):
    if n_splits == 1:
        return f"seed {random_state}"
    return f"{n_splits} splits, seeds {random_state}-{random_state + n_splits - 1}"


def _bunch(splits, description, name):
    first = splits[0]
    info = {
        "name": name,
        "description": description,
        "n_bank_pairs": int(first.X_bank.shape[0]),
        "n_test_pairs": int(first.X_test.shape[0]),
        "n_bank_items": int(np.unique(first.groups_bank).size),
        "labels": first.y_test is not None,
        "n_splits": len(splits),
    }
    return Bunch(
        X_bank=first.X_bank, X_test=first.X_test, y_bank=first.y_bank, y_test=first.y_test,
        groups_bank=first.groups_bank, splits=splits,
        description=f"{description}; bank {len(first.X_bank)} pairs, test "
                    f"{len(first.X_test)} pairs",
        info=info, n_query_features=None,
    )


def load_dataset(name="coco-clip", *, n_pairs=1000, random_state=0, n_splits=1,
                 data_home=None):
    """Bank and test pairs of a named dataset.

    Parameters
    ----------
    name : {"coco-clip", "msrvtt-videoclip", "synthetic"}, default="coco-clip"
        ``"coco-clip"``: the COCO CLIP embeddings bundled with the package
        (always available, offline); ``"msrvtt-videoclip"``: fetched into
        the cache; ``"synthetic"``: :func:`~skxmr.datasets.make_retrieval_problem`.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    random_state : int, default=0
        Seed of the generator and of the first bank/test split (split ``s``
        uses ``random_state + s``).
    n_splits : int, default=1
        Number of random bank/test splits (:func:`random_splits`).
    data_home : str, default=None
        Cache folder of the fetchers (env ``SKXMR_DATA``).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_bank, X_test`` (half of the items each), ``y_bank = y_test =
        None``, ``groups_bank`` (of the first split), ``splits`` (one Bunch
        of those and ``seed`` per split), ``description`` and ``info`` (for
        the JSON output).
    """
    from .. import datasets

    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}.")
    if name == "synthetic":
        bunch = datasets.make_retrieval_problem(n_pairs=n_pairs, random_state=random_state)
        what = f"synthetic ({n_pairs} pairs, make_retrieval_problem)"
    elif name == "coco-clip":
        bunch = datasets.load_coco_clip()
        what = "COCO val2017 CLIP ViT-B/16 (500 pairs, bundled), text->image"
    else:
        bunch = datasets.fetch_msrvtt_videoclip(data_home=data_home)
        what = "MSR-VTT VideoCLIP (100 pairs), text->video"
    splits = random_splits(bunch.X, bunch.groups, bank_size=0.5, random_state=random_state,
                           n_splits=n_splits)
    data = _bunch(splits, f"{what}, {_seeds(random_state, n_splits)}", name=name)
    data.info.update(random_state=random_state, bank_size=0.5)
    return data


#: Share of the test queries (in either direction) with several relevant
#: items from which the table shows R-P and mAP@R: a few duplicated captions
#: among a thousand leave R@5 and MdR the informative columns.
MANY_TO_MANY_SHARE = 0.05


def several_relevant(X, y=None, n_query_features=None):
    """Per direction: ``[queries with several relevant items, queries]`` of a test set."""
    R = split_pairs(X, y, n_query_features=n_query_features).relevance
    return {"q2g": [int((R.sum(axis=1) > 1).sum()), int(R.shape[0])],
            "g2q": [int((R.sum(axis=0) > 1).sum()), int(R.shape[1])]}


def counts_many_to_many(counts):
    """Whether :func:`several_relevant`'s ``counts`` are many-to-many: at least
    5% of the queries (in either direction) with several relevant items."""
    return any(k >= MANY_TO_MANY_SHARE * n for k, n in counts.values())


def many_to_many(X, y=None, n_query_features=None):
    """Whether at least 5% of the queries (in either direction) have several relevant items."""
    return counts_many_to_many(several_relevant(X, y, n_query_features))

