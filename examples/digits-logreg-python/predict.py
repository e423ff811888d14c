"""Digits logistic regression, served with numpy only.

Orrery python servable contract: `predict(inputs)` takes a dict of numpy
arrays keyed by the signature's input names and returns a dict of numpy arrays
keyed by its output names. Weights are read from weights.json next to this file.
"""

import json
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(_HERE, "weights.json"), encoding="utf-8") as _f:
    _WEIGHTS = json.load(_f)

_SCALE = float(_WEIGHTS["input_scale"])
_COEF = np.asarray(_WEIGHTS["coef"], dtype=np.float64)  # (10, 64)
_INTERCEPT = np.asarray(_WEIGHTS["intercept"], dtype=np.float64)  # (10,)


def predict(inputs):
    """inputs["input"]: FP32 [batch, 64] pixel counts (0..16).

    Returns {"probabilities": FP32 [batch, 10]}, the softmax over digits 0-9.
    """
    x = np.asarray(inputs["input"], dtype=np.float64)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != _COEF.shape[1]:
        raise ValueError("input must have shape [batch, %d], got %s"
                         % (_COEF.shape[1], list(x.shape)))
    z = (x * _SCALE) @ _COEF.T + _INTERCEPT
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return {"probabilities": (e / e.sum(axis=1, keepdims=True)).astype(np.float32)}
