"""BankSplit: validation galleries sized like the deployment's."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skxmr import InvertedSoftmax
from skxmr.metrics import make_retrieval_scorer
from skxmr.model_selection import BankSplit
from tests.conftest import make_pairs


@pytest.mark.parametrize(
    "gallery_size, n_items, n_val",
    [(100, 1000, 100), (500, 1000, 500), (250, 250, 125), (1000, 250, 200), (None, 250, 125),
     (0.5, 300, 150), (2.0, 30, 20), (1, 2, 1), (10**6, 3, 2)],
)
def test_validation_items(gallery_size, n_items, n_val):
    """As large as the gallery when the bank has room; else the deployment's proportion."""
    assert BankSplit(gallery_size=gallery_size).validation_items(n_items) == n_val


def test_splits_keep_items_together_and_differ():
    X = make_pairs(60, 4)
    groups = np.repeat(np.arange(20), 3)  # three rows per item
    cv = BankSplit(n_splits=4, gallery_size=5, random_state=1)
    splits = list(cv.split(X, groups=groups))
    assert len(splits) == cv.get_n_splits() == 4
    for train, val in splits:
        assert len(val) == 15 and len(train) == 45  # 5 whole items of 3 rows
        assert not set(groups[train]) & set(groups[val])
        assert np.array_equal(np.sort(np.r_[train, val]), np.arange(60))
    assert len({tuple(val) for _, val in splits}) == 4  # random, not one fold
    again = list(BankSplit(n_splits=4, gallery_size=5, random_state=1).split(X, groups=groups))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))  # seeded


def test_grid_search_cv_takes_it():
    X = make_pairs(80, 6, seed=3)
    search = GridSearchCV(
        InvertedSoftmax(), {"temperature": [0.05, 0.1], "strength": [0.0, 1.0]},
        scoring=make_retrieval_scorer("recall", k=1), cv=BankSplit(3, gallery_size=40),
    ).fit(X, groups=np.arange(80))
    assert search.n_splits_ == 3
    assert search.best_params_["strength"] in (0.0, 1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_splits"):
        BankSplit(n_splits=0)
    with pytest.raises(ValueError, match="gallery_size"):
        BankSplit(gallery_size=-1)
    with pytest.raises(ValueError, match="at least 2 items"):
        list(BankSplit().split(make_pairs(1, 2)))
    with pytest.raises(ValueError, match="one item id per row"):
        list(BankSplit().split(make_pairs(6, 2), groups=[0, 1]))


def test_transductive_methods_are_registered_as_such(capsys):
    import skxmr
    from skxmr.benchmark import main

    assert skxmr.registered_methods()["DSL"]["transductive"]
    assert not any(e["transductive"] for n, e in skxmr.registered_methods().items()
                   if n != "DSL")
    assert main(["benchmark", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "(transductive)" in next(line for line in lines if line.startswith("DSL"))
    assert not any("(transductive)" in line for line in lines if line.startswith("SN "))
