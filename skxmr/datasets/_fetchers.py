"""Fetchers for small real galleries, downloaded once into a checksummed cache.

The files come from the public repository of Liang et al., "Mind the Gap:
Understanding the Modality Gap in Multi-modal Contrastive Representation
Learning" (NeurIPS 2022), MIT licence, pinned to one commit. Every load
verifies the file's SHA-256, so a truncated or corrupted cache is never read;
hashing 2 MB takes a few milliseconds, so the result is not memoised (a
size+mtime key could miss a same-size rewrite within one timestamp tick).
"""

import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._pairs import pair

COMMIT = "8e20cb24efa4c5f89aad694f2f65eb43ffc46d10"
#: Where the files are downloaded from; the environment variable
#: ``SKXMR_DATA_URL`` overrides it (a mirror, or a local server in tests).
DATA_URL = (
    f"https://raw.githubusercontent.com/Weixin-Liang/Modality-Gap/{COMMIT}/"
    "Figure_1_Modality_Gap/"
)
SHA256 = {
    "features_clip.npy": "7227280ace0f145d2c45afa8ab507a1cb280e9460aa271fe9052d08e35342adb",
    "features_videoclip.npy": "53255cac6105c5c47dd1850d77de084957d5f83841ba9ae9254bf7ae998573da",
}
_TIMEOUT = 60  # seconds per network operation


def get_data_home(data_home=None):
    """Return the directory of the dataset cache, creating it if missing.

    Precedence: the ``data_home`` argument, then the environment variable
    ``SKXMR_DATA``, then ``~/skxmr_data``. A read-only directory that already
    exists (e.g. a shared copy of the files) is used as is.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit cache directory.

    Returns
    -------
    data_home : str
        Absolute path of the cache directory.

    Examples
    --------
    >>> import tempfile, os
    >>> from skxmr.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = get_data_home(os.path.join(tmp, "cache"))
    ...     os.path.isdir(path)
    True
    """
    if data_home is None:
        data_home = os.environ.get("SKXMR_DATA") or os.path.join("~", "skxmr_data")
    path = Path(os.path.expanduser(os.fspath(data_home))).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        if not path.is_dir():
            raise
    return str(path)


def _data_url():
    url = os.environ.get("SKXMR_DATA_URL") or DATA_URL
    return url if url.endswith("/") else url + "/"


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(name, path):
    """Download ``name`` to ``path`` atomically; the checksum must match."""
    url = _data_url() + name
    expected = SHA256[name]
    directory = os.path.dirname(path)
    # A temporary file in the target directory, so os.replace is atomic and a
    # failed or interrupted download never leaves a file under the real name.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise OSError(
            f"Cannot write {name} into the data cache {directory} ({exc}); pass "
            "data_home or set SKXMR_DATA to a writable directory."
        ) from exc
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
            # URLError, HTTPError and timeouts are OSErrors; a connection cut
            # mid-body raises http.client.IncompleteRead.
            except (OSError, http.client.HTTPException) as exc:
                raise OSError(
                    f"Could not download {url}: {exc}. Without network access, "
                    f"put {name} (SHA-256 {expected}) into {directory}, or set "
                    "the environment variable SKXMR_DATA to a directory that "
                    "holds it."
                ) from exc
        actual = h.hexdigest()
        if actual != expected:
            raise OSError(
                f"Downloaded {name} from {url} has SHA-256 {actual}, expected "
                f"{expected}; the file was discarded."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _fetch_file(name, data_home, download_if_missing):
    """Path of a verified copy of ``name`` in the cache, downloading if allowed."""
    home = get_data_home(data_home)
    path = os.path.join(home, name)
    expected = SHA256[name]
    if os.path.exists(path):
        actual = _sha256(path)
        if actual == expected:
            return path
        if not download_if_missing:
            raise OSError(
                f"Cached file {path} is corrupted: SHA-256 {actual}, expected "
                f"{expected}. Delete it and call again with "
                "download_if_missing=True, or replace it with a good copy."
            )
    elif not download_if_missing:
        raise OSError(
            f"{name} is not in the data cache {home} and download_if_missing=False. "
            f"Download {_data_url() + name} there, or set SKXMR_DATA to a "
            "directory that holds it."
        )
    _download(name, path)
    return path


def _load_pairs(name, data_home, download_if_missing, descr):
    path = _fetch_file(name, data_home, download_if_missing)
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3 or arr.shape[0] != 2:
        raise ValueError(f"{path} has shape {arr.shape}, expected (2, n_pairs, n_features).")
    # [0] is the gallery modality (images/videos), [1] the text; both rows are
    # already L2-normalised and are kept exactly as published.
    gallery = np.ascontiguousarray(arr[0], dtype=np.float32)
    queries = np.ascontiguousarray(arr[1], dtype=np.float32)
    n, d = gallery.shape
    return Bunch(
        queries=queries,
        gallery=gallery,
        X=pair(queries, gallery),
        groups=np.arange(n),
        DESCR=descr.format(n=n, d=d, commit=COMMIT, url=DATA_URL + name),
    )


_PROVENANCE = """
Source: {url}
Repository Weixin-Liang/Modality-Gap, commit {commit}, folder
Figure_1_Modality_Gap/ (Liang et al., "Mind the Gap: Understanding the Modality
Gap in Multi-modal Contrastive Representation Learning", NeurIPS 2022).
Licence: MIT.

Shapes: queries ({n}, {d}), gallery ({n}, {d}), X ({n}, 2*{d}) float32; row i of
queries is paired with row i of gallery; rows are L2-normalised as published.

Caveat: this is a small gallery ({n} items), far easier than the papers'
benchmarks (e.g. COCO 5k); use it to check that a method helps on real
embeddings, not to reproduce published numbers.
"""

_COCO_DESCR = (
    "COCO val2017 / CLIP ViT-B/16 paired embeddings\n"
    "==============================================\n"
    "{n} COCO val2017 images with one caption each, embedded by OpenAI CLIP "
    "ViT-B/16.\nqueries = caption embeddings, gallery = image embeddings.\n"
) + _PROVENANCE

_MSRVTT_DESCR = (
    "MSR-VTT / VideoCLIP paired embeddings\n"
    "=====================================\n"
    "{n} MSR-VTT test videos embedded by VideoCLIP; the text of a video is its "
    "captions joined.\nqueries = text embeddings, gallery = video embeddings.\n"
) + _PROVENANCE


def fetch_coco_clip(data_home=None, download_if_missing=True):
    """Load 500 paired CLIP ViT-B/16 embeddings of COCO val2017 captions and images.

    Downloads ``features_clip.npy`` (2 MB) into :func:`get_data_home` on
    first use and verifies its SHA-256 on every load; a corrupted cached copy
    is re-downloaded (or, with ``download_if_missing=False``, reported) and
    never loaded. ``SKXMR_DATA_URL`` overrides the download location.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache directory; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` instead of downloading a missing or
        corrupted file.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        queries : ndarray of shape (500, 512), float32
            Caption embeddings (index ``[1]`` of the file).
        gallery : ndarray of shape (500, 512), float32
            Image embeddings (index ``[0]``); row ``i`` matches ``queries[i]``.
        X : ndarray of shape (500, 1024), float32
            ``pair(queries, gallery)``.
        groups : ndarray of shape (500,)
            Item id of each row, ``np.arange(500)``.
        DESCR : str
            Provenance, licence (MIT), commit, shapes and caveats.

    Raises
    ------
    OSError
        The file is missing or corrupted and may not be downloaded, the
        download fails (the message gives the URL and how to fill the cache by
        hand), or the downloaded bytes fail the checksum.

    Examples
    --------
    >>> from skxmr.datasets import fetch_coco_clip
    >>> from skxmr.metrics import recall_at_k
    >>> data = fetch_coco_clip()
    >>> data.queries.shape, data.gallery.shape, data.X.dtype
    ((500, 512), (500, 512), dtype('float32'))
    >>> round(recall_at_k(data.queries @ data.gallery.T, data.groups, k=1), 1)
    50.6
    """
    return _load_pairs("features_clip.npy", data_home, download_if_missing, _COCO_DESCR)


def fetch_msrvtt_videoclip(data_home=None, download_if_missing=True):
    """Load 100 paired VideoCLIP embeddings of MSR-VTT test videos and their text.

    Downloads ``features_videoclip.npy`` (0.6 MB) into :func:`get_data_home`
    on first use and verifies its SHA-256 on every load, exactly like
    :func:`fetch_coco_clip`.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache directory; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` instead of downloading a missing or
        corrupted file.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        queries : ndarray of shape (100, 768), float32
            Text embeddings (a video's captions joined; index ``[1]``).
        gallery : ndarray of shape (100, 768), float32
            Video embeddings (index ``[0]``); row ``i`` matches ``queries[i]``.
        X : ndarray of shape (100, 1536), float32
            ``pair(queries, gallery)``.
        groups : ndarray of shape (100,)
            Item id of each row, ``np.arange(100)``.
        DESCR : str
            Provenance, licence (MIT), commit, shapes and caveats.

    Raises
    ------
    OSError
        As for :func:`fetch_coco_clip`.

    Examples
    --------
    >>> from skxmr.datasets import fetch_msrvtt_videoclip
    >>> data = fetch_msrvtt_videoclip()
    >>> data.X.shape
    (100, 1536)
    """
    return _load_pairs(
        "features_videoclip.npy", data_home, download_if_missing, _MSRVTT_DESCR
    )
