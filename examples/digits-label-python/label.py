"""Class scores to a decision, as an Orrery python servable (numpy only).

Takes the unnormalised scores (logits) of a 10-class digits classifier and
returns, per row, the predicted digit (the class with the highest score) and
its softmax probability, the usual last step after a classifier.

Contract: predict(inputs) takes a dict of numpy arrays keyed by the signature's
input names and returns a dict keyed by its output names.
"""

import numpy as np


def predict(inputs):
    """inputs: logits FP32 [batch, 10].

    Returns {"digit": INT64 [batch], "confidence": FP32 [batch]}.
    """
    z = np.asarray(inputs["logits"], dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 10:
        raise ValueError("logits must have shape [batch, 10], got %s" % list(z.shape))
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    digit = p.argmax(axis=1)
    confidence = p[np.arange(len(p)), digit]
    return {"digit": digit.astype(np.int64), "confidence": confidence.astype(np.float32)}
