"""A synthetic multiplicity problem: items as Gaussian clouds (the calibration paper's setting)."""

import numbers

import numpy as np
from sklearn.utils import Bunch, check_random_state

def make_multiplicity_problem(n_categories=8, n_items_per_category=12, n_augmentations=8,
                              n_features=16, *, item_noise=0.6, spread=0.15,
                              modality_gap=0.3, variance_scale=None, random_state=None):
    """Items as Gaussian clouds whose *shape* carries their category.

    ``n_categories`` concepts with unit-norm centres ``m_c`` and a
    concept-specific anisotropic spread ``a_c = spread * exp(N(0, 1))`` per
    feature (some concepts vary along some features, others along
    others -- the multiplicity of the paper: a broad caption matches many
    images). Every item of concept ``c`` sits at ``m_c + item_noise *
    N(0, I / d)`` (so means of different concepts overlap) and its
    ``n_augmentations`` augmented embeddings are ``location + a_c * N(0, I)``.
    Gallery items are shifted by a constant modality-gap vector of norm
    ``modality_gap``. Queries and gallery items are relevant iff they share
    the concept (pass ``y`` to the scorers).

    Parameters
    ----------
    n_categories : int, default=8
    n_items_per_category : int, default=12
        Query items and gallery items per concept.
    n_augmentations : int, default=8
        Samples per item (>= 2).
    n_features : int, default=16
    item_noise : float, default=0.6
    spread : float, default=0.15
    modality_gap : float, default=0.3
    variance_scale : float, default=None
        Mean per-feature variance of the augmentations (over concepts and
        features); the spread profiles are rescaled to it, keeping their
        shapes. ``None``: ``spread``'s (about ``2.4 spread²``). Real caption
        Gaussians sit far lower: all-MiniLM-L6-v2 with 8 word-dropout
        augmentations per caption has a mean variance of about 3.5e-4, where
        raw KL-type divergences are orders of magnitude above W2.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    data : Bunch
        ``query_samples``, ``gallery_samples`` of shape (n_items,
        n_augmentations, n_features); ``y`` (n_items,) the concept of query
        ``i`` and gallery item ``i`` (row ``i`` of the paired data pairs
        them); ``DESCR``.

    Examples
    --------
    >>> from skxmr.datasets import make_multiplicity_problem
    >>> data = make_multiplicity_problem(n_categories=3, n_items_per_category=2, random_state=0)
    >>> data.query_samples.shape, data.y.tolist()
    ((6, 8, 16), [0, 0, 1, 1, 2, 2])
    """
    for name, value in (("n_categories", n_categories),
                        ("n_items_per_category", n_items_per_category),
                        ("n_features", n_features)):
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
                or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if isinstance(n_augmentations, (bool, np.bool_)) or not isinstance(
        n_augmentations, numbers.Integral
    ) or n_augmentations < 2:
        raise ValueError(f"n_augmentations must be an integer >= 2, got {n_augmentations!r}.")
    for name, value in (("item_noise", item_noise), ("spread", spread),
                        ("modality_gap", modality_gap)):
        if not (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                and np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    if variance_scale is not None and not (
        isinstance(variance_scale, numbers.Real)
        and not isinstance(variance_scale, (bool, np.bool_))
        and np.isfinite(variance_scale) and variance_scale > 0
    ):
        raise ValueError(
            f"variance_scale must be None or a finite number > 0, got {variance_scale!r}."
        )
    rng = check_random_state(random_state)
    C, n, d = n_categories, n_items_per_category, n_features
    centres = rng.standard_normal((C, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    profile = spread * np.exp(rng.standard_normal((C, d)))
    if variance_scale is not None:
        profile *= np.sqrt(variance_scale / np.mean(profile**2))
    gap = rng.standard_normal(d)
    gap *= modality_gap / np.linalg.norm(gap)
    y = np.repeat(np.arange(C), n)

    def side(shift):
        loc = centres[y] + item_noise * rng.standard_normal((y.size, d)) / np.sqrt(d) + shift
        noise = rng.standard_normal((y.size, n_augmentations, d))
        return loc[:, None, :] + profile[y][:, None, :] * noise

    queries = side(0.0)
    gallery = side(gap)
    return Bunch(
        query_samples=queries,
        gallery_samples=gallery,
        y=y,
        DESCR=(
            f"Synthetic multiplicity problem: {C} concepts x {n} query and {n} gallery "
            f"items, {n_augmentations} augmentations each, {d} features; a concept is "
            "identified by the anisotropic spread of its items' augmentations."
        ),
    )
