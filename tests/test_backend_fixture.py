"""The backend fixture itself: arrays land on the backend and come back."""

import numpy as np


def test_backend_round_trip(backend):
    a = np.arange(6.0).reshape(2, 3)
    x = backend.asarray(a)
    with backend.dispatch():
        back = backend.to_numpy(x)
    assert back.dtype == np.dtype(backend.dtype)
    np.testing.assert_array_equal(back, a)
