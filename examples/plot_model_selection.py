"""
Tuning a retrieval pipeline with GridSearchCV
=============================================

The whole story of a user of skxmr on real CLIP embeddings of COCO: the
bank pairs (the training split) are the only data the search sees; a
:class:`~sklearn.pipeline.Pipeline` chains inverse graph convolution of the
gallery (:class:`skxmr.InvGC`) with Sinkhorn normalisation
(:class:`skxmr.SinkhornNormalizer`); :class:`~sklearn.model_selection.GridSearchCV`
tunes the temperature and the strength with a retrieval scorer on
:class:`skxmr.model_selection.BankSplit` splits of the bank, whose
validation galleries are as large as the bank allows next to an equal
training bank (a validation gallery much smaller than the test gallery
picks settings that do not transfer); the refitted pipeline then scores
the unseen test pairs, in both directions.
"""

# %%
# Bank and test pairs
# -------------------
# Each COCO image appears once here, so its id is the group; with several
# captions per image, the groups keep all of them on one side of a fold.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skxmr import CosineSimilarity, InvGC, SinkhornNormalizer
from skxmr.datasets import bank_test_split, load_coco_clip
from skxmr.metrics import make_retrieval_scorer
from skxmr.model_selection import BankSplit

coco = load_coco_clip()
X_bank, X_test, groups_bank, groups_test = bank_test_split(coco.X, coco.groups, random_state=0)

# %%
# The search
# ----------
# ``strength=0`` is plain cosine similarity after InvGC, so the grid contains
# "no normalisation" and the search cannot do worse than it on its folds.
temperatures = [0.01, 0.02, 0.03, 0.05]
strengths = [0.0, 0.5, 1.0]
scorers = {"R@1": make_retrieval_scorer("recall", k=1), "MnR": make_retrieval_scorer("mean_rank")}
results = {}
for direction in ("q2g", "g2q"):
    pipe = make_pipeline(
        InvGC(direction=direction), SinkhornNormalizer(direction=direction)
    )
    grid = GridSearchCV(
        pipe,
        {
            "sinkhornnormalizer__temperature": temperatures,
            "sinkhornnormalizer__strength": strengths,
        },
        scoring=scorers,
        refit="R@1",
        cv=BankSplit(n_splits=3, gallery_size=len(np.unique(groups_test))),
    )
    grid.fit(X_bank, groups=groups_bank)
    baseline = CosineSimilarity(direction=direction).fit(X_bank)
    results[direction] = grid
    print(
        f"{direction}: best {grid.best_params_}, CV R@1 {grid.best_score_:.1f}; "
        f"test R@1 {grid.score(X_test):.1f} (cosine {baseline.score(X_test):.1f})"
    )

# %%
# The validation surface
# ----------------------
# Mean R@1 over the bank splits for every cell of the grid, per direction.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, (direction, grid) in zip(axes, results.items()):
    cv = grid.cv_results_
    surface = np.array(cv["mean_test_R@1"]).reshape(len(temperatures), len(strengths))
    image = ax.imshow(surface, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(strengths)), [str(s) for s in strengths])
    ax.set_yticks(range(len(temperatures)), [str(t) for t in temperatures])
    ax.set_xlabel("strength α")
    ax.set_ylabel("temperature τ")
    ax.set_title(f"{direction}: CV R@1 on the bank")
    for (i, j), value in np.ndenumerate(surface):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(image, ax=ax)
fig.tight_layout()
plt.show()
