"""Tests of skxmr.datasets: generator, checksummed fetchers, bank/test split."""

import functools
import hashlib
import os
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import scipy.stats

from skxmr import pair
from skxmr.datasets import (
    bank_test_split,
    fetch_coco_clip,
    fetch_embeddings,
    fetch_msrvtt_videoclip,
    get_data_home,
    load_coco_clip,
    make_retrieval_problem,
)
from skxmr.datasets import _fetchers
from skxmr.metrics import recall_at_k
from tests.conftest import fetch_or_skip

FILES = {
    "features_clip.npy": (fetch_coco_clip, (500, 512)),
    "features_videoclip.npy": (fetch_msrvtt_videoclip, (100, 768)),
}
EXPECTED_SHA = {
    "features_clip.npy": "7227280ace0f145d2c45afa8ab507a1cb280e9460aa271fe9052d08e35342adb",
    "features_videoclip.npy": "53255cac6105c5c47dd1850d77de084957d5f83841ba9ae9254bf7ae998573da",
}


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def k_occurrence_skewness(scores, k=10):
    """Skewness of how often each gallery column is in a query's top k."""
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    counts = np.bincount(top.ravel(), minlength=scores.shape[1])
    return scipy.stats.skew(counts), counts


# --------------------------------------------------------------------------
# make_retrieval_problem
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_problem():
    return make_retrieval_problem(random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n_pairs, n_features, n_latent, cpi",
    [(1, 2, None, 1), (3, 2, 1, 4), (57, 16, 5, 1), (40, 33, None, 3)],
)
def test_generator_shapes_dtypes_norms(n_pairs, n_features, n_latent, cpi, dtype):
    data = make_retrieval_problem(
        n_pairs, n_features, n_latent=n_latent, captions_per_item=cpi,
        dtype=dtype, random_state=1,
    )
    n_rows = n_pairs * cpi
    assert data.queries.shape == (n_rows, n_features)
    assert data.gallery.shape == (n_pairs, n_features)
    assert data.X.shape == (n_rows, 2 * n_features)
    assert data.groups.shape == (n_rows,)
    for a in (data.queries, data.gallery, data.X):
        assert a.dtype == dtype
        assert np.all(np.isfinite(a))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.linalg.norm(data.queries, axis=1), 1, atol=tol)
    np.testing.assert_allclose(np.linalg.norm(data.gallery, axis=1), 1, atol=tol)
    assert isinstance(data.DESCR, str) and str(n_pairs) in data.DESCR


def test_generator_deterministic():
    a = make_retrieval_problem(50, 8, captions_per_item=2, random_state=3)
    b = make_retrieval_problem(50, 8, captions_per_item=2, random_state=3)
    c = make_retrieval_problem(50, 8, captions_per_item=2, random_state=4)
    for key in ("queries", "gallery", "X", "groups", "hubs"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.allclose(a.gallery, c.gallery)
    rs = np.random.RandomState(3)
    d = make_retrieval_problem(50, 8, random_state=rs)
    assert d.queries.shape == (50, 8)


def test_generator_captions_grouping():
    data = make_retrieval_problem(30, 16, captions_per_item=5, random_state=0)
    np.testing.assert_array_equal(data.groups, np.repeat(np.arange(30), 5))
    np.testing.assert_array_equal(data.X, pair(data.queries, data.gallery[data.groups]))
    # The five captions of an item are distinct rows but closer to each other
    # than to other items' captions (they share the item's content).
    Q = data.queries.astype(np.float64)
    assert np.unique(Q, axis=0).shape[0] == 150
    S = Q @ Q.T
    same = data.groups[:, None] == data.groups[None, :]
    off_diag = ~np.eye(150, dtype=bool)
    assert S[same & off_diag].mean() > S[~same].mean() + 0.1
    # groups are the relevant gallery columns: R@5 far above chance (1/30).
    assert recall_at_k(Q @ data.gallery.T, data.groups, k=5) > 50


def test_generator_modality_gap_and_cone(default_problem):
    Q, G = default_problem.queries, default_problem.gallery
    gap = np.linalg.norm(Q.mean(0) - G.mean(0))
    assert gap > 0.5  # mean text != mean image
    # The gap comes from the modality_gap parameter, not from noise.
    no_gap = make_retrieval_problem(1000, 64, modality_gap=0.0, random_state=0)
    assert np.linalg.norm(no_gap.queries.mean(0) - no_gap.gallery.mean(0)) < 0.2
    # A narrow cone: within-modality cosines are mostly positive, unlike the
    # ~0 of isotropic vectors (cone=0 and no gap).
    assert (Q @ Q.T).mean() > 0.3 and (G @ G.T).mean() > 0.3
    iso = make_retrieval_problem(500, 64, cone=0.0, modality_gap=0.0, n_hubs=0, random_state=0)
    assert abs((iso.gallery @ iso.gallery.T).mean()) < 0.05


def test_generator_recall_and_hubness(default_problem):
    data = default_problem
    S = data.queries.astype(np.float64) @ data.gallery.T.astype(np.float64)
    r1 = recall_at_k(S, data.groups, k=1)
    assert 20 <= r1 <= 60  # realistic middle range; chance is 0.1 %
    skew, counts = k_occurrence_skewness(S, k=10)
    assert skew > 1.5
    # The explicit hubs are retrieved far more often than an average item.
    assert data.hubs.size == 20
    assert counts[data.hubs].mean() > 2 * counts.mean()
    # Stronger hubs take more top-10 slots and cost cosine recall. (Skewness
    # is not monotone in the number of hubs: many equal giants lower it.)
    strong = make_retrieval_problem(n_hubs=0.05, hub_strength=2.0, random_state=0)
    S2 = strong.queries @ strong.gallery.T
    counts2 = k_occurrence_skewness(S2)[1]
    assert counts2[strong.hubs].sum() > 3 * counts[data.hubs].sum()
    assert recall_at_k(S2, strong.groups, k=1) < r1 - 5
    # Without explicit hubs some natural hubness remains (high dimension).
    plain = make_retrieval_problem(n_hubs=0, random_state=0)
    assert plain.hubs.size == 0
    assert k_occurrence_skewness(plain.queries @ plain.gallery.T)[0] > 1


def test_generator_noise_controls_difficulty():
    r1 = [
        recall_at_k((d.queries @ d.gallery.T), d.groups, k=1)
        for d in (
            make_retrieval_problem(300, 32, noise=s, random_state=0) for s in (0.2, 1.0, 3.0)
        )
    ]
    assert r1[0] > r1[1] > r1[2]


def test_generator_n_hubs_int_and_fraction():
    assert make_retrieval_problem(100, 8, n_hubs=7, random_state=0).hubs.size == 7
    assert make_retrieval_problem(100, 8, n_hubs=0.1, random_state=0).hubs.size == 10
    assert make_retrieval_problem(100, 8, n_hubs=0, random_state=0).hubs.size == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_pairs=0), "n_pairs"),
        (dict(n_features=1), "n_features"),
        (dict(n_features=8, n_latent=9), "n_latent"),
        (dict(noise=-1.0), "noise"),
        (dict(noise=np.nan), "noise"),
        (dict(cone=np.inf), "cone"),
        (dict(modality_gap=-0.1), "modality_gap"),
        (dict(n_hubs=101, n_pairs=100), "n_hubs"),
        (dict(n_hubs=1.5), "n_hubs"),
        (dict(hub_strength=-1.0), "hub_strength"),
        (dict(captions_per_item=0), "captions_per_item"),
        (dict(dtype=np.int64), "dtype"),
        (dict(n_query_features=0), "n_query_features"),
        (dict(distortion=-0.5), "distortion"),
    ],
)
def test_generator_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_retrieval_problem(**kwargs)


def test_generator_two_encoders():
    from skxmr import CosineSimilarity, pair
    from skxmr.alignment import ProcrustesAlignment
    from skxmr.datasets import second_encoder

    one = make_retrieval_problem(300, 32, captions_per_item=2, random_state=0)
    # The shared-space default is unchanged by the new parameters' defaults.
    same = make_retrieval_problem(300, 32, captions_per_item=2, n_query_features=None,
                                  distortion=0.0, random_state=0)
    np.testing.assert_array_equal(one.X, same.X)
    two = make_retrieval_problem(300, 32, captions_per_item=2, n_query_features=24,
                                 distortion=0.5, random_state=0)
    assert two.queries.shape == (600, 24) and two.X.shape == (600, 56)
    assert two.queries.dtype == np.float32 and "Two encoders" in two.DESCR
    np.testing.assert_allclose(np.linalg.norm(two.queries, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(two.gallery, one.gallery)  # only the queries move
    # Same width, re-encoded: cosine between the halves is lost. A purely
    # linear second encoder of the same width is a rotation, which centred
    # Procrustes undoes exactly (it is equivariant to rotating a half); the
    # distortion is not linearly recoverable.
    def procrustes_r1(distortion=None, noise=1.2):
        two_encoders = {} if distortion is None else {"n_query_features": 32,
                                                      "distortion": distortion}
        b = make_retrieval_problem(300, 32, noise=noise, random_state=0, **two_encoders)
        if distortion is not None:
            assert CosineSimilarity().fit(b.X).score(b.X) < 5
        Z = ProcrustesAlignment().fit(b.X[:150]).transform(b.X[150:])
        return CosineSimilarity().fit(Z).score(Z)

    assert procrustes_r1(0.0) == procrustes_r1()
    assert procrustes_r1(2.0, noise=0.5) < procrustes_r1(0.0, noise=0.5) - 4
    # The encoder alone: deterministic, normalised, linear at distortion 0.
    A = np.random.default_rng(0).standard_normal((20, 8))
    np.testing.assert_array_equal(second_encoder(A, 6, 0.3, random_state=1),
                                  second_encoder(A, 6, 0.3, random_state=1))
    lin = second_encoder(A, 12, 0.0, random_state=1)
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    np.testing.assert_allclose(lin @ lin.T, An @ An.T, atol=1e-12)  # an isometry


# --------------------------------------------------------------------------
# get_data_home and fetchers from the cache
# --------------------------------------------------------------------------


def test_get_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SKXMR_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    explicit = get_data_home(tmp_path / "explicit" / "nested")
    assert explicit == str(tmp_path / "explicit" / "nested")
    assert os.path.isdir(explicit)
    assert get_data_home() == str(tmp_path / "env")
    assert os.path.isdir(tmp_path / "env")
    monkeypatch.delenv("SKXMR_DATA")
    assert get_data_home() == str(tmp_path / "home" / "skxmr_data")
    assert os.path.isdir(tmp_path / "home" / "skxmr_data")


def test_get_data_home_read_only_existing(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert get_data_home(ro) == str(ro)
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("name", sorted(FILES))
def test_fetch_from_cache(name):
    fetch, (n, d) = FILES[name]
    data = fetch_or_skip(fetch, download_if_missing=False)
    assert data.queries.shape == data.gallery.shape == (n, d)
    assert data.X.shape == (n, 2 * d)
    for a in (data.queries, data.gallery, data.X):
        assert a.dtype == np.float32
    np.testing.assert_array_equal(data.X, np.hstack([data.queries, data.gallery]))
    np.testing.assert_array_equal(data.groups, np.arange(n))
    np.testing.assert_allclose(np.linalg.norm(data.queries, axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(data.gallery, axis=1), 1, atol=1e-3)
    for word in ("MIT", _fetchers.COMMIT, f"({n}, {d})", "small"):
        assert word in data.DESCR
    # The file that was loaded is the published one, and the module agrees.
    path = os.path.join(get_data_home(), name)
    assert sha256(path) == EXPECTED_SHA[name] == _fetchers.SHA256[name]
    # queries are the text ([1]) and gallery the images/videos ([0]).
    raw = np.load(path)
    np.testing.assert_array_equal(data.queries, raw[1])
    np.testing.assert_array_equal(data.gallery, raw[0])


def test_bundled_coco_is_the_published_file():
    """The package's copy is byte-identical to the published file, with its
    licence notice beside it, and loads like the fetcher's copy."""
    bundled = _fetchers.BUNDLED / "features_clip.npy"
    assert sha256(bundled) == EXPECTED_SHA["features_clip.npy"]
    notice = (_fetchers.BUNDLED / "LICENSE").read_text()
    for word in ("MIT License", _fetchers.COMMIT, "Weixin-Liang/Modality-Gap",
                 EXPECTED_SHA["features_clip.npy"]):
        assert word in notice
    data = load_coco_clip()
    raw = np.load(bundled)
    np.testing.assert_array_equal(data.queries, raw[1])
    np.testing.assert_array_equal(data.gallery, raw[0])
    assert data.X.shape == (500, 1024) and data.X.dtype == np.float32
    for word in ("MIT", _fetchers.COMMIT, "Bundled", "small"):
        assert word in data.DESCR


def test_load_coco_clip_needs_no_cache_nor_network(tmp_path, monkeypatch):
    """A fresh offline machine: empty HOME, no SKXMR_DATA, no network."""
    monkeypatch.delenv("SKXMR_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SKXMR_DATA_URL", "http://127.0.0.1:9/")  # nothing listens there
    data = load_coco_clip()
    assert data.X.shape == (500, 1024)
    assert not (tmp_path / "home").exists()  # it touched no cache


def test_damaged_bundled_copy_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "features_clip.npy").write_bytes(b"truncated")
    monkeypatch.setattr(_fetchers, "BUNDLED", bad)
    with pytest.raises(OSError, match="SHA-256.*fetch_coco_clip"):
        load_coco_clip()


def test_fetch_coco_recall_matches_readme():
    data = load_coco_clip()
    r1 = recall_at_k(data.queries @ data.gallery.T, data.groups, k=1)
    assert r1 == pytest.approx(50.6)


def test_fetch_missing_without_download(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_coco_clip(data_home=tmp_path / "empty", download_if_missing=False)
    assert os.listdir(tmp_path / "empty") == []


# --------------------------------------------------------------------------
# Downloads from a real local HTTP server
# --------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve a fresh directory over HTTP on 127.0.0.1; SKXMR_DATA_URL points at it.

    Yields ``(root, hits)``: the served directory and a list of requested paths.
    """
    root = tmp_path / "served"
    root.mkdir()
    hits = []

    class Handler(_Handler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SKXMR_DATA_URL", f"http://127.0.0.1:{server.server_address[1]}/data")
    (root / "data").mkdir()
    try:
        yield root / "data", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_real_files(served, names=tuple(FILES)):
    """Put the published files into the served dir: COCO from the package's
    copy, the others from the cache (SKXMR_DATA; the test skips without it)."""
    for name in names:
        if name == "features_clip.npy":
            src = _fetchers.BUNDLED / name
        else:
            src = fetch_or_skip(
                _fetchers._fetch_file, name=name, data_home=None, download_if_missing=False
            )
        shutil.copyfile(src, served / name)


def no_temp_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".part")] == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_download_into_empty_cache(tmp_path, http_root, name):
    served, hits = http_root
    serve_real_files(served, [name])
    fetch, (n, d) = FILES[name]
    cache = tmp_path / "cache" / "nested"
    data = fetch(data_home=cache)
    assert hits == [f"/data/{name}"]
    assert sha256(cache / name) == EXPECTED_SHA[name]
    assert no_temp_files(cache)
    raw = np.load(served / name)
    np.testing.assert_array_equal(data.X, pair(raw[1], raw[0]))
    assert _fetchers.DATA_URL + name in data.DESCR  # provenance, not the mirror
    # A verified cached copy is not downloaded again.
    fetch(data_home=cache)
    assert len(hits) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_cache_is_reported_or_redownloaded(tmp_path, http_root, damage):
    served, hits = http_root
    serve_real_files(served, ["features_clip.npy"])
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "features_clip.npy"
    good = (served / "features_clip.npy").read_bytes()
    if damage == "flip":
        bad = bytearray(good)
        bad[-100] ^= 0xFF  # inside the float data: np.load alone would not notice
        bad = bytes(bad)
    else:
        bad = good[: len(good) // 2]
    path.write_bytes(bad)
    actual = hashlib.sha256(bad).hexdigest()

    with pytest.raises(OSError) as exc:
        fetch_coco_clip(data_home=cache, download_if_missing=False)
    msg = str(exc.value)
    assert str(path) in msg and EXPECTED_SHA["features_clip.npy"] in msg and actual in msg
    assert path.read_bytes() == bad  # reported, neither loaded nor replaced
    assert hits == []

    data = fetch_coco_clip(data_home=cache)
    assert hits == ["/data/features_clip.npy"]
    assert path.read_bytes() == good
    assert data.queries.shape == (500, 512)
    assert no_temp_files(cache)


def test_server_serving_wrong_bytes(tmp_path, http_root):
    served, _ = http_root
    (served / "features_videoclip.npy").write_bytes(b"not the published file")
    cache = tmp_path / "cache"
    with pytest.raises(OSError) as exc:
        fetch_msrvtt_videoclip(data_home=cache)
    msg = str(exc.value)
    assert "SHA-256" in msg and EXPECTED_SHA["features_videoclip.npy"] in msg
    assert os.listdir(cache) == []  # nothing left, not even a temporary file


def test_download_http_error_mentions_url_and_manual_fill(tmp_path, http_root):
    cache = tmp_path / "cache"  # the server has no such file: 404
    with pytest.raises(OSError) as exc:
        fetch_coco_clip(data_home=cache)
    msg = str(exc.value)
    assert os.environ["SKXMR_DATA_URL"] + "/features_clip.npy" in msg
    assert "SKXMR_DATA" in msg and str(cache) in msg
    assert os.listdir(cache) == []


def test_download_connection_refused(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x/"
    monkeypatch.setenv("SKXMR_DATA_URL", url)
    with pytest.raises(OSError, match="SKXMR_DATA") as exc:
        fetch_msrvtt_videoclip(data_home=tmp_path)
    assert url + "features_videoclip.npy" in str(exc.value)
    assert no_temp_files(tmp_path)


def test_corrupted_cache_without_network_says_checksum(tmp_path, monkeypatch):
    """Offline, a damaged cached copy is reported as failing its checksum,
    not only as a failed download."""
    monkeypatch.setenv("SKXMR_DATA_URL", "http://127.0.0.1:9/")  # nothing listens there
    path = tmp_path / "features_clip.npy"
    path.write_bytes(b"damaged")
    with pytest.raises(OSError) as exc:
        fetch_coco_clip(data_home=tmp_path)
    msg = str(exc.value)
    assert "failed its checksum" in msg and str(path) in msg
    assert EXPECTED_SHA["features_clip.npy"] in msg and hashlib.sha256(b"damaged").hexdigest() in msg
    assert "Could not download" in msg and "127.0.0.1:9" in msg
    assert path.read_bytes() == b"damaged" and no_temp_files(tmp_path)


def test_cache_entry_that_is_a_directory(tmp_path):
    (tmp_path / "features_clip.npy").mkdir()
    with pytest.raises(ValueError, match="is a directory") as exc:
        fetch_coco_clip(data_home=tmp_path)
    assert str(tmp_path / "features_clip.npy") in str(exc.value)


def test_data_home_naming_a_file(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("SKXMR_DATA", str(afile))
    with pytest.raises(ValueError, match="SKXMR_DATA") as exc:
        get_data_home()
    assert str(afile) in str(exc.value)
    with pytest.raises(ValueError, match="data_home") as exc:
        fetch_msrvtt_videoclip(data_home=afile / "sub")
    assert str(afile) in str(exc.value) and "not a directory" in str(exc.value)
    assert afile.read_text() == "x"


def test_fetch_embeddings_by_url_and_sha(tmp_path):
    """A user's own hosted file: downloaded once, verified on every call."""
    src = tmp_path / "mine.npz"
    np.savez(src, text=np.ones((3, 4), np.float32))
    digest = sha256(src)
    cache = tmp_path / "cache"
    path = fetch_embeddings(src.as_uri(), digest, data_home=cache)
    assert path == str(cache / "mine.npz") and sha256(path) == digest
    assert fetch_embeddings(src.as_uri(), digest.upper(), data_home=cache) == path
    src.unlink()  # cached: no second download
    assert fetch_embeddings(src.as_uri(), digest, data_home=cache,
                            download_if_missing=False) == path
    named = fetch_embeddings((cache / "mine.npz").as_uri(), digest, filename="x.npz",
                             data_home=tmp_path / "c2")
    assert os.path.basename(named) == "x.npz"
    with pytest.raises(OSError, match="SHA-256"):
        fetch_embeddings((cache / "mine.npz").as_uri(), "0" * 64, filename="y.npz",
                         data_home=cache)
    assert not (cache / "y.npz").exists() and no_temp_files(cache)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"url": "https://example.org/a.npy", "sha256": "abc"}, "sha256"),
        ({"url": "https://example.org/a.npy", "sha256": None}, "sha256"),
        ({"url": "a.npy", "sha256": "0" * 64}, "url"),
        ({"url": 3, "sha256": "0" * 64}, "url"),
        ({"url": "https://example.org/", "sha256": "0" * 64}, "filename"),
        ({"url": "https://example.org/a.npy", "sha256": "0" * 64, "filename": "../b"},
         "filename"),
    ],
)
def test_fetch_embeddings_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fetch_embeddings(**kwargs, data_home=tmp_path)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# bank_test_split
# --------------------------------------------------------------------------


def test_bank_test_split_by_groups():
    data = make_retrieval_problem(40, 4, captions_per_item=3, random_state=0)
    Xb, Xt, gb, gt = bank_test_split(data.X, data.groups, bank_size=0.25, random_state=5)
    assert np.intersect1d(gb, gt).size == 0
    assert np.unique(gb).size == 10 and np.unique(gt).size == 30
    assert Xb.shape == (30, 8) and Xt.shape == (90, 8)
    # Every row lands on exactly one side, in its original order.
    rows_b = np.flatnonzero(np.isin(data.groups, gb))
    np.testing.assert_array_equal(Xb, data.X[rows_b])
    np.testing.assert_array_equal(Xt, data.X[np.setdiff1d(np.arange(120), rows_b)])
    # Deterministic; another seed gives another split.
    again = bank_test_split(data.X, data.groups, bank_size=0.25, random_state=5)
    np.testing.assert_array_equal(again[2], gb)
    other = bank_test_split(data.X, data.groups, bank_size=0.25, random_state=6)
    assert not np.array_equal(np.unique(other[2]), np.unique(gb))
    # An int bank_size counts groups; non-integer group labels work.
    labels = np.array([f"img{g}" for g in data.groups])
    _, _, gb3, gt3 = bank_test_split(data.X, labels, bank_size=3)
    assert np.unique(gb3).size == 3 and np.intersect1d(gb3, gt3).size == 0


def test_bank_test_split_without_groups_and_default_seed():
    data = load_coco_clip()
    Xb, Xt, gb, gt = bank_test_split(data.X)  # the same four values as with groups
    assert Xb.shape == Xt.shape == (250, 1024) and Xb.dtype == np.float32
    Xb2, _, _, _ = bank_test_split(data.X)
    np.testing.assert_array_equal(Xb, Xb2)  # default random_state=0
    rows = np.vstack([Xb, Xt])
    assert np.unique(rows, axis=0).shape[0] == 500
    # Without groups every row is its own item: the groups are row indices,
    # identical to passing np.arange explicitly.
    np.testing.assert_array_equal(Xb, data.X[gb])
    np.testing.assert_array_equal(Xt, data.X[gt])
    explicit = bank_test_split(data.X, np.arange(500))
    np.testing.assert_array_equal(explicit[2], gb)


@pytest.mark.parametrize("bank_size", [0.0, 1.0, 1.5, -0.2, np.nan, 0, 10, -1, 0.05])
def test_bank_test_split_bad_bank_size(bank_size):
    X = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(ValueError, match="bank_size"):
        bank_test_split(X, bank_size=bank_size)


def test_bank_test_split_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(ValueError, match="groups"):
        bank_test_split(X, np.arange(9))
    with pytest.raises(ValueError, match="groups"):
        bank_test_split(X, np.arange(10).reshape(5, 2))
    with pytest.raises(ValueError, match="group"):
        bank_test_split(X, np.zeros(10))  # one item cannot be split
    with pytest.raises(TypeError, match="bank_size"):
        bank_test_split(X, bank_size=True)
    with pytest.raises(ValueError, match="X"):
        bank_test_split(np.full((10, 4), np.nan))
