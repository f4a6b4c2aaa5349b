"""Real paired embeddings: the bundled COCO set and checksummed, cached fetchers.

The published files come from the public repository of Liang et al., "Mind
the Gap: Understanding the Modality Gap in Multi-modal Contrastive
Representation Learning" (NeurIPS 2022), MIT licence, pinned to one commit.

- :func:`load_coco_clip` reads the copy of ``features_clip.npy`` (2 MB) that
  ships inside the package (``skxmr/datasets/data/``, with its licence
  notice), as scikit-learn bundles its small datasets: no network, no cache.
- :func:`fetch_coco_clip` and :func:`fetch_msrvtt_videoclip` download the
  published files into the cache (:func:`get_data_home`); COCO's fetcher
  lets a user refresh or verify the bundled copy against the source.
- :func:`fetch_embeddings` does the same for any file a user names by URL
  and SHA-256 (their own hosted embeddings).

Every load verifies the file's SHA-256, so a truncated or corrupted file is
never read; hashing 2 MB takes a few milliseconds, so the result is not
memoised (a size+mtime key could miss a same-size rewrite within one
timestamp tick).
"""

import hashlib
import http.client
import os
import re
import tempfile
import urllib.parse
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
#: The package's own copy of the COCO file and its licence notice.
BUNDLED = Path(__file__).resolve().parent / "data"
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

    Raises
    ------
    ValueError
        The path (or one of its parents) exists but is not a directory.

    Examples
    --------
    >>> import tempfile, os
    >>> from skxmr.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = get_data_home(os.path.join(tmp, "cache"))
    ...     os.path.isdir(path)
    True
    """
    source = "data_home"
    if data_home is None:
        env = os.environ.get("SKXMR_DATA")
        source = "SKXMR_DATA" if env else "the default data home"
        data_home = env or os.path.join("~", "skxmr_data")
    path = Path(os.path.expanduser(os.fspath(data_home))).resolve()
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ValueError(
            f"{source} names {path}, but {blocker} is a file, not a directory; "
            "point it at a directory for the dataset cache."
        )
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


def _download(url, expected, path, cached_problem=None):
    """Download ``url`` to ``path`` atomically; the checksum must match.

    ``cached_problem`` says what was wrong with the copy already in the
    cache (its checksum), so that a failed re-download reports both.
    """
    name = os.path.basename(path)
    directory = os.path.dirname(path)
    before = f"{cached_problem}; re-downloading it failed: " if cached_problem else ""
    # A temporary file in the target directory, so os.replace is atomic and a
    # failed or interrupted download never leaves a file under the real name.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise OSError(
            f"{before}Cannot write {name} into the data cache {directory} ({exc}); "
            "pass data_home or set SKXMR_DATA to a writable directory."
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
                    f"{before}Could not download {url}: {exc}. Without network "
                    f"access, put {name} (SHA-256 {expected}) into {directory}, or "
                    "set the environment variable SKXMR_DATA to a directory that "
                    "holds it."
                ) from exc
        actual = h.hexdigest()
        if actual != expected:
            raise OSError(
                f"{before}Downloaded {name} from {url} has SHA-256 {actual}, "
                f"expected {expected}; the file was discarded."
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def fetch_embeddings(url, sha256, *, filename=None, data_home=None, download_if_missing=True):
    """Path of a verified local copy of an embedding file named by URL and SHA-256.

    The file is downloaded once into :func:`get_data_home` and its SHA-256 is
    checked on every call, exactly as for the package's own fetchers: serve
    your own embeddings (``.npy``, ``.npz``, ``.pt``) from any URL that
    ``urllib`` opens (``https://``, ``file://``) and load them with NumPy or
    ``skxmr benchmark --queries``.

    Parameters
    ----------
    url : str
        Where the file is published.
    sha256 : str
        Its SHA-256 as 64 hexadecimal digits (``sha256sum FILE``).
    filename : str, default=None
        Name in the cache; default: the last component of the URL's path.
    data_home : str or path-like, default=None
        Cache directory; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` instead of downloading a missing or
        corrupted file.

    Returns
    -------
    path : str
        The verified file in the cache.

    Raises
    ------
    ValueError
        A malformed ``sha256`` or ``filename``, or a cache entry that is a
        directory.
    OSError
        The file is missing or fails its checksum and may not be downloaded,
        the download fails (the message says how to fill the cache by hand,
        and that the cached copy failed its checksum when it did), or the
        downloaded bytes fail the checksum.

    Examples
    --------
    >>> import hashlib, os, tempfile
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from skxmr.datasets import fetch_embeddings
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     src = os.path.join(tmp, "mine.npy")
    ...     np.save(src, np.eye(3, dtype=np.float32))
    ...     digest = hashlib.sha256(open(src, "rb").read()).hexdigest()
    ...     path = fetch_embeddings(Path(src).as_uri(), digest,
    ...                             data_home=os.path.join(tmp, "cache"))
    ...     np.load(path).shape
    (3, 3)
    """
    if not isinstance(url, str) or not urllib.parse.urlsplit(url).scheme:
        raise ValueError(f"url must be a URL string such as 'https://...', got {url!r}.")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}.")
    expected = sha256.lower()
    if filename is None:
        filename = os.path.basename(urllib.parse.urlsplit(url).path)
    if not isinstance(filename, str) or not filename or os.path.basename(filename) != filename:
        raise ValueError(
            f"filename must be a plain file name (no directory), got {filename!r}; "
            "pass filename= when the URL's path does not end in one."
        )
    home = get_data_home(data_home)
    path = os.path.join(home, filename)
    problem = None
    if os.path.isdir(path):
        raise ValueError(
            f"The data cache entry {path} is a directory, not the file {filename}; "
            "remove it or point data_home / SKXMR_DATA elsewhere."
        )
    if os.path.exists(path):
        actual = _sha256(path)
        if actual == expected:
            return path
        problem = (
            f"Cached file {path} failed its checksum: SHA-256 {actual}, expected "
            f"{expected}"
        )
        if not download_if_missing:
            raise OSError(
                f"{problem}. Delete it and call again with download_if_missing=True, "
                "or replace it with a good copy."
            )
    elif not download_if_missing:
        raise OSError(
            f"{filename} is not in the data cache {home} and download_if_missing=False. "
            f"Download {url} there, or set SKXMR_DATA to a directory that holds it."
        )
    _download(url, expected, path, cached_problem=problem)
    return path


def _fetch_file(name, data_home, download_if_missing):
    """Path of a verified copy of the published file ``name`` in the cache."""
    return fetch_embeddings(
        _data_url() + name, SHA256[name], filename=name, data_home=data_home,
        download_if_missing=download_if_missing,
    )


def _load_pairs(path, descr, source):
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
        DESCR=descr.format(
            n=n, d=d, commit=COMMIT, url=DATA_URL + os.path.basename(path), source=source
        ),
    )


_PROVENANCE = """
{source}
Published at {url}
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


def load_coco_clip():
    """Load the bundled 500 paired CLIP ViT-B/16 embeddings of COCO val2017.

    Reads the copy of ``features_clip.npy`` that ships inside the package
    (MIT licence; notice and provenance in ``skxmr/datasets/data/LICENSE``),
    after checking its SHA-256: no network and no cache are needed. The same
    file as :func:`fetch_coco_clip` downloads from its source.

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
        The bundled copy is missing or fails its checksum (a damaged
        installation; :func:`fetch_coco_clip` downloads a fresh copy).

    Examples
    --------
    >>> from skxmr.datasets import load_coco_clip
    >>> from skxmr.metrics import recall_at_k
    >>> data = load_coco_clip()
    >>> data.queries.shape, data.gallery.shape, data.X.dtype
    ((500, 512), (500, 512), dtype('float32'))
    >>> round(recall_at_k(data.queries @ data.gallery.T, data.groups, k=1), 1)
    50.6
    """
    name = "features_clip.npy"
    path = BUNDLED / name
    if not path.is_file() or _sha256(path) != SHA256[name]:
        raise OSError(
            f"The bundled {path} is missing or fails its SHA-256 check "
            f"({SHA256[name]}): the installation is damaged. Reinstall skxmr, or "
            "use fetch_coco_clip() to download the published file."
        )
    return _load_pairs(path, _COCO_DESCR, "Bundled with skxmr (skxmr/datasets/data/).")


def fetch_coco_clip(data_home=None, download_if_missing=True):
    """Download (once) the 500 paired CLIP ViT-B/16 embeddings of COCO val2017.

    The same data as the bundled :func:`load_coco_clip`, fetched from its
    source into the cache, to refresh or verify the bundled copy. Downloads
    ``features_clip.npy`` (2 MB) into :func:`get_data_home` on first use
    and verifies its SHA-256 on every load; a corrupted cached copy is
    re-downloaded (or, with ``download_if_missing=False``, reported) and
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
        As for :func:`load_coco_clip`.

    Raises
    ------
    ValueError
        The cache directory or its entry for the file is not usable (a file
        where a directory belongs, or the reverse).
    OSError
        The file is missing or corrupted and may not be downloaded, the
        download fails (the message gives the URL, how to fill the cache by
        hand, and whether the cached copy failed its checksum), or the
        downloaded bytes fail the checksum.

    Examples
    --------
    >>> from skxmr.datasets import fetch_coco_clip, load_coco_clip
    >>> data = fetch_coco_clip()  # doctest: +SKIP
    >>> (data.X == load_coco_clip().X).all()  # doctest: +SKIP
    True
    """
    path = _fetch_file("features_clip.npy", data_home, download_if_missing)
    return _load_pairs(path, _COCO_DESCR, f"Cached copy: {path}")


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
    ValueError, OSError
        As for :func:`fetch_coco_clip`.

    Examples
    --------
    >>> from skxmr.datasets import fetch_msrvtt_videoclip
    >>> data = fetch_msrvtt_videoclip()  # doctest: +SKIP
    >>> data.X.shape  # doctest: +SKIP
    (100, 1536)
    """
    path = _fetch_file("features_videoclip.npy", data_home, download_if_missing)
    return _load_pairs(path, _MSRVTT_DESCR, f"Cached copy: {path}")
