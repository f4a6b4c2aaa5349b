"""Edge cases found by fuzzing every public name, and steps of a newcomer's path.

Each test is the regression test of one reported failure: a silent wrong
answer at an edge of the input domain, or a broken step (saving a serving
index, a confusing message).
"""

import pickle
import warnings

import numpy as np
import pytest

import skxmr
from skxmr.alignment import cauchy_schwarz_loss, generalized_cauchy_schwarz_loss
from skxmr.metrics import cs_divergence, gcs_divergence


@pytest.fixture(scope="module")
def problem():
    make = skxmr.datasets.make_retrieval_problem
    Xb = make(n_pairs=60, n_features=8, random_state=0, dtype=np.float64).X
    Xt = make(n_pairs=30, n_features=8, random_state=1, dtype=np.float64).X
    return Xb, Xt


# ------------------------------------------------------------- serving
def _servable_methods():
    for name, entry in skxmr.registered_methods().items():
        if name not in ("Calibration (W2)", "DSL"):  # no serving path (documented)
            yield name


@pytest.mark.parametrize("name", list(_servable_methods()))
def test_index_pickles_after_answering_queries(problem, name):
    Xb, Xt = problem
    Q, G = skxmr.unpair(Xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = skxmr.registered_methods()[name]["factory"]().fit(Xb)
    idx = skxmr.index(est, G)
    scores, ids = idx.kneighbors(Q[:3], n_neighbors=2)  # a query first
    loaded = pickle.loads(pickle.dumps(idx))
    again = loaded.kneighbors(Q[:3], n_neighbors=2)
    np.testing.assert_array_equal(again[1], ids)
    np.testing.assert_allclose(again[0], scores)
    np.testing.assert_allclose(loaded.score(Q[:3]), idx.score(Q[:3]))


def test_approximate_index_pickles(problem):
    pytest.importorskip("faiss")
    Xb, Xt = problem
    Q, G = skxmr.unpair(Xt)
    idx = skxmr.InvertedSoftmax().fit(Xb).index(G, approximate=True)
    ids = idx.kneighbors(Q, n_neighbors=3, return_distance=False)
    loaded = pickle.loads(pickle.dumps(idx))
    np.testing.assert_array_equal(loaded.kneighbors(Q, 3, return_distance=False), ids)


def test_index_repr_says_what_is_served(problem):
    Xb, Xt = problem
    Q, G = skxmr.unpair(Xt)
    text = repr(skxmr.InvertedSoftmax().fit(Xb).index(G))
    assert text == "GalleryIndex(InvertedSoftmax, n_gallery=30, n_features=8, dtype=float64)"


def test_kneighbors_return_distance_and_deprecated_return_scores(problem):
    Xb, Xt = problem
    Q, G = skxmr.unpair(Xt)
    idx = skxmr.CosineSimilarity().fit(Xb).index(G)
    ids = idx.kneighbors(Q, n_neighbors=2, return_distance=False)
    assert ids.shape == (30, 2)
    with pytest.warns(FutureWarning, match="return_distance"):
        old = idx.kneighbors(Q, n_neighbors=2, return_scores=False)
    np.testing.assert_array_equal(old, ids)


def test_single_1d_query_gets_a_short_message(problem):
    Xb, Xt = problem
    Q, G = skxmr.unpair(Xt)
    idx = skxmr.CosineSimilarity().fit(Xb).index(G)
    with pytest.raises(ValueError) as info:
        idx.kneighbors(Q[0])
    msg = str(info.value)
    assert "queries" in msg and "reshape(1, -1)" in msg and "\n" not in msg
    assert repr(Q[0, 0])[:6] not in msg and len(msg) < 150


# ------------------------------------------------- divergences and losses
def test_cs_divergence_at_the_ends_of_the_float_range():
    big = np.array([1e308, -1e308])
    assert cs_divergence(big, big, log=True) == 0.0
    value = cs_divergence(np.array([1e308, 0.0]), np.array([0.0, 0.0]), log=True)
    assert value == pytest.approx(0.5 * np.log(2), rel=1e-12)  # p = (1, 0), q uniform
    assert gcs_divergence(big, big, big, log=True) == 0.0


def test_cauchy_schwarz_loss_refuses_overflowing_logits_by_name():
    L = np.array([[-1e308, 1e308], [1e308, -1e308]])
    with pytest.raises(ValueError, match="logits holds values"):
        cauchy_schwarz_loss(L, np.eye(2, dtype=bool))
    with pytest.raises(ValueError, match=r"logits\[1\] holds values"):
        generalized_cauchy_schwarz_loss([np.eye(2), L], np.eye(2))
    # At the bound the loss is finite and the gradient in [-1, 1].
    L = L / 1e308 * 2e307
    loss, grad = cauchy_schwarz_loss(L, np.eye(2, dtype=bool))
    assert np.isfinite(loss) and np.all(np.abs(grad) <= 1)
    np.testing.assert_allclose(grad, [[-1.0, 1.0], [1.0, -1.0]])


# ----------------------------------------------------------- messages
@pytest.mark.parametrize("func", [
    "inverted_softmax_scores", "qb_norm_scores", "nnn_scores", "sinkhorn_scores",
    "csls_scores", "dbnorm_scores", "mutual_proximity_scores", "local_scaling_scores",
    "distribution_normalization_scores", "dual_bank_sinkhorn_scores",
])
@pytest.mark.parametrize("bad", ["gallery", "query_bank", "gallery_bank"])
def test_two_view_width_errors_name_the_arguments(problem, func, bad):
    import inspect

    f = getattr(skxmr.hubness, func)
    Xb, Xt = problem
    (Q, G), (Bq, Bg) = skxmr.unpair(Xt), skxmr.unpair(Xb)
    args = {"queries": Q, "gallery": G, "query_bank": Bq, "gallery_bank": Bg}
    params = [p for p in inspect.signature(f).parameters if p in args]
    if bad not in params:
        pytest.skip(f"{func} takes no {bad}")
    args[bad] = args[bad][:, :7]
    with pytest.raises(ValueError, match=f"^{bad} has 7 features but queries has 8"):
        f(**{p: args[p] for p in params})


def test_zero_norm_half_names_its_row_of_X(problem):
    Xb, Xt = problem
    X = Xt.copy()
    X[1:5, 8:] = X[0, 8:]  # rows 0-4 share one gallery item
    X[10, 8:] = 0.0         # unique gallery item 6, row 10 of X
    for call in (lambda: skxmr.InvertedSoftmax().fit(X),
                 lambda: skxmr.InvertedSoftmax().fit(Xb).decision_function(X)):
        with pytest.raises(ValueError, match=r"X \(gallery half\) has 1 zero-norm row\(s\) "
                                             r"\(first: row 10 of X\)"):
            call()


@pytest.mark.parametrize("kwargs", [{"family": None}, {"family": ""}, {"family": 3},
                                    {"family": "x", "description": None}])
def test_register_method_checks_family_and_description(kwargs):
    from skxmr import _registry

    with pytest.raises(TypeError, match=next(iter(kwargs)) if len(kwargs) == 1 else "description"):
        skxmr.register_method("Cosine (edge)", lambda direction="q2g": skxmr.CosineSimilarity(),
                              **kwargs)
    assert "Cosine (edge)" not in _registry._METHODS


# -------------------------------------------------- large temperatures
def _temperature_estimators(tau):
    from skxmr import (DBNorm, DualBankSinkhornNormalizer, DualSoftmax, InvertedSoftmax,
                       QBNorm, SinkhornNormalizer)

    return [InvertedSoftmax(temperature=tau), QBNorm(temperature=tau),
            DualSoftmax(temperature=tau), SinkhornNormalizer(temperature=tau),
            DualBankSinkhornNormalizer(temperature=tau),
            DBNorm(query_temperature=tau), DBNorm(gallery_temperature=tau)]


@pytest.mark.parametrize("tau", [1e14, 1e15, 1e50, 1e308])
def test_temperatures_beyond_float64_precision_are_refused_by_name(problem, tau):
    Xb, _ = problem
    for est in _temperature_estimators(tau):
        with pytest.raises(ValueError, match="temperature' parameter"):
            est.fit(Xb)
    Q, G = skxmr.unpair(Xb)
    with pytest.raises(ValueError, match="temperature"):
        skxmr.hubness.sinkhorn_scores(Q, G, Q, temperature=tau)


def _sinkhorn_reference(M, tau, n_iter=10):
    """h - h[0] of Sinkhorn-Knopp in 50-digit arithmetic (POT's convention)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        K = [[mpmath.exp(mpmath.mpf(v) / tau) for v in row] for row in M.tolist()]
        n, m = M.shape
        c = [mpmath.mpf(1) / m] * m
        for _ in range(n_iter):
            r = [mpmath.mpf(1) / n / mpmath.fsum(K[i][j] * c[j] for j in range(m))
                 for i in range(n)]
            c = [mpmath.mpf(1) / m / mpmath.fsum(K[i][j] * r[i] for i in range(n))
                 for j in range(m)]
        h = [-tau * mpmath.log(v) for v in c]
        return np.array([float(v - h[0]) for v in h])


def test_largest_temperature_keeps_the_exact_ranking(problem):
    from skxmr.utils._params import MAX_TEMPERATURE as tau

    Xb, Xt = problem
    Xb, Xt = Xb[:20], Xt[:12]
    norm = lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)  # noqa: E731
    (Q, G), (Bq, Bg) = map(norm, skxmr.unpair(Xt)), map(norm, skxmr.unpair(Xb))
    S = Q @ G.T
    M = G @ Bq.T  # IS: h - τ log n = max + τ log1p(mean expm1((M - max) / τ)), exact
    top = M.max(axis=1)
    h_is = top + tau * np.log1p(np.mean(np.expm1((M - top[:, None]) / tau), axis=1))
    cases = [(skxmr.InvertedSoftmax(temperature=tau), h_is),
             (skxmr.SinkhornNormalizer(temperature=tau), _sinkhorn_reference(Bq @ G.T, tau)),
             (skxmr.DualBankSinkhornNormalizer(temperature=tau),
              _sinkhorn_reference(Bq @ np.vstack([G, Bg]).T, tau)[: len(G)])]
    for est, h in cases:
        D = est.fit(Xb).decision_function(Xt)
        exact = S - h
        # the same scores up to a constant per row, hence the same ranking
        np.testing.assert_allclose(D - D[:, :1], exact - exact[:, :1], atol=1e-7)
        np.testing.assert_array_equal(D.argmax(axis=1), exact.argmax(axis=1))


# ------------------------------------------------------------- the CLI
def _cli(argv, capsys):
    from skxmr.benchmark._cli import main

    code = main(["benchmark", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write_bad(path, kind):
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not numbers\n")
    elif kind == "object":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "zeros":
        np.save(path, np.zeros((40, 6)))
    elif kind == "nan":
        A = np.ones((40, 6))
        A[7, 2] = np.nan
        np.save(path, A)
    elif kind == "corrupt-pt":
        path.write_bytes(b"\x80\x02not really a torch file")


@pytest.mark.parametrize("kind, suffix, problem", [
    ("empty", ".npy", "the file is empty"),
    ("text", ".npy", "no NumPy header"),
    ("object", ".npy", "Python objects"),
    ("zeros", ".npy", "40 all-zero row(s) of 40 (first: row 0)"),
    ("nan", ".npy", "1 row(s) with NaN or infinity (first: row 7)"),
    ("corrupt-pt", ".pt", "written by torch.save"),
])
def test_bad_file_is_one_line_naming_it(tmp_path, capsys, kind, suffix, problem):
    if suffix == ".pt":
        pytest.importorskip("torch")
    bad = tmp_path / f"bad{suffix}"
    _write_bad(bad, kind)
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).standard_normal((40, 6)))
    code, out, err = _cli(["--queries", str(bad), "--gallery", str(good), "--no-progress"],
                          capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: --queries '{bad}'"), err
    assert problem in err


def test_files_of_two_widths_one_note_and_no_wrong_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((40, 4))
    np.save(tmp_path / "q.npy", Z @ rng.standard_normal((4, 6)))
    np.save(tmp_path / "g.npy", Z @ rng.standard_normal((4, 8)))
    code, out, err = _cli(["--queries", str(tmp_path / "q.npy"), "--gallery",
                           str(tmp_path / "g.npy"), "--no-progress",
                           "--methods", "Cosine,IS,SN,Calibration (W2)"], capsys)
    assert code == 2  # nothing can run on two widths without an alignment step
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes[0].startswith("note: 3 methods (Cosine, IS, SN) skipped: The halves of X "
                               "have 6 and 8 features")
    # W2 is told where the packed Gaussians' halves split: it refuses, never
    # scores columns split in the wrong place.
    assert notes[1].startswith("note: Calibration (W2) skipped: The halves of X hold 6- and "
                               "8-dimensional Gaussians")
    assert len(notes) == 2


def test_progress_when_stderr_is_not_a_terminal(capsys):
    from skxmr.benchmark._run import run_benchmark

    run_benchmark("synthetic", n_pairs=40, methods=["Cosine", "IS"], progress=True, n_splits=1)
    err = capsys.readouterr().err
    assert "[1/2] Cosine" in err and "[2/2] IS" in err


def test_no_pairing_signal_warns_once_per_search():
    from sklearn.model_selection import GridSearchCV

    from skxmr.metrics import make_retrieval_scorer

    X = np.random.default_rng(0).standard_normal((60, 8))  # one modality split in two
    search = GridSearchCV(skxmr.InvertedSoftmax(), {"temperature": [0.05]}, cv=3,
                          scoring=make_retrieval_scorer(k=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # even so: once per call
        search.fit(X)
        skxmr.InvertedSoftmax().fit(X)  # a second call from this line: its own place
    messages = [str(w.message) for w in caught if "pairing signal" in str(w.message)]
    assert len(messages) == 2, messages


def test_score_is_the_percentage_rounded_once():
    from skxmr.metrics import recall_at_k, retrieval_report

    S = np.eye(125)
    S[:37] = np.roll(np.eye(125), 1, axis=1)[:37]  # 88 of 125 queries hit
    R = np.eye(125, dtype=bool)
    assert recall_at_k(S, R, k=1) == 70.4
    assert retrieval_report(S, R, ks=(1,))["q2g"]["R@1"] == 70.4


def test_every_example_that_draws_shows_its_figures():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py")):
        text = path.read_text()
        if "plt.subplots" in text or "plt.figure" in text:
            assert text.rstrip().endswith("plt.show()"), path.name


def test_user_docs_cite_no_internal_references():
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    internal = re.compile(r"seeds/|DESIGN|\(issues? \d|\bissues? \d+\b|\bthe session\b")
    texts = {p: p.read_text() for p in [root / "README.md", *sorted((root / "doc").glob("*.rst"))]}
    for path in [*sorted((root / "skxmr").rglob("*.py")), *sorted((root / "examples").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        nodes = [tree, *(n for n in ast.walk(tree)
                         if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)))]
        docs = [ast.get_docstring(n) or "" for n in nodes]
        if path.parent.name == "examples":  # the examples' text cells are pages too
            docs.append(path.read_text())
        texts[path] = "\n".join(docs)
    found = [f"{path.relative_to(root)}: {m.group(0)!r}"
             for path, text in texts.items() for m in internal.finditer(text)]
    assert not found, found


# ------------------------------------------------------------- metrics
def test_report_names_the_gallery_item_without_a_relevant_query():
    from skxmr.metrics import retrieval_report

    S = np.random.default_rng(0).standard_normal((4, 5))
    with pytest.raises(ValueError, match=r"1 gallery item\(s\) have none \(first: column 4"):
        retrieval_report(S, np.arange(4))
    assert set(retrieval_report(S, np.arange(4), directions=("q2g",))) == {"q2g"}


def test_metrics_docs_state_their_preconditions():
    from pathlib import Path

    from skxmr.metrics import hub_occurrence, hubness_skewness, rank_of_relevant

    page = (Path(__file__).parents[1] / "doc" / "metrics.rst").read_text()
    for text in (page, rank_of_relevant.__doc__):
        assert "needs at least one relevant item" in " ".join(text.split())
        assert "infinite score" in text
    assert "k · n_gallery" in hub_occurrence.__doc__
    assert "as scikit-hubness computes it" not in hub_occurrence.__doc__
    # the documented artefact of the tie rule, measured
    assert round(hubness_skewness(np.ones((20, 20)), k=1), 2) == 4.13
    assert "4.13" in page and "4.13" in hubness_skewness.__doc__


# ---------------------------------------------------------------- docs
def test_docs_render_math_offline(tmp_path):
    """The docs' extensions put MathJax in the build: no formula needs a CDN."""
    import ast
    from pathlib import Path

    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx-mathjax-offline")
    from sphinx.application import Sphinx

    conf = (Path(__file__).parents[1] / "doc" / "conf.py").read_text()
    extensions = next(ast.literal_eval(node.value) for node in ast.parse(conf).body
                      if isinstance(node, ast.Assign) and node.targets[0].id == "extensions")
    math = [e for e in extensions if "math" in e]
    (tmp_path / "conf.py").write_text(f"extensions = {math!r}\n")
    (tmp_path / "index.rst").write_text("Page\n====\n\n.. math:: S(q, g) - \\alpha h(g)\n")
    out = tmp_path / "html"
    Sphinx(str(tmp_path), str(tmp_path), str(out), str(tmp_path / "doctrees"), "html",
           status=None, warning=None).build()
    html = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "mathjax" in html
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file()


# ------------------------------------------------------------ start-up
def test_import_and_numpy_work_never_import_torch_or_pot():
    """POT's backend module imports torch (seconds): numpy users never pay it."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np, skxmr\n"
        "assert 'torch' not in sys.modules and 'ot' not in sys.modules, 'import'\n"
        "X = skxmr.datasets.make_retrieval_problem(n_pairs=60, n_features=8, random_state=0).X\n"
        "for name in ('Cosine', 'IS', 'SN', 'DBSN', 'CSLS', 'InvGC', 'MP'):\n"
        "    est = skxmr.registered_methods()[name]['factory']().fit(X)\n"
        "    skxmr.index(est, X[:, 8:]).kneighbors(X[:, :8], 3)\n"
        "assert 'torch' not in sys.modules and 'ot' not in sys.modules, 'numpy work'\n"
    )
    root = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:]
