"""A scikit-learn model served as it was trained: a pickled pipeline, loaded in the worker.

model.pkl holds sklearn.pipeline.make_pipeline(StandardScaler(), SVC(probability=True)),
written by examples/train.py with scikit-learn 1.2.1. A pickle runs code when it is loaded,
so the hub never opens it itself: this module does, inside the servable's sandboxed worker
process. scikit-learn comes from the hub's Python environment `sklearn` (the manifest's
python.environment), and python.requires pins the version the pickle was written with.
"""
import os
import pickle

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "model.pkl"), "rb") as f:
    MODEL = pickle.load(f)


def predict(inputs):
    """input: FP32 [batch, 64] pixel counts 0..16 -> probabilities: FP32 [batch, 10]."""
    x = np.asarray(inputs["input"], dtype=np.float64)
    return {"probabilities": MODEL.predict_proba(x).astype(np.float32)}
