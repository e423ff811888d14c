"""The UCI digits preprocessing as an Orrery python servable (numpy only).

The UCI "Optical Recognition of Handwritten Digits" data (doi:10.24432/C50P49)
was made from 32x32 binary bitmaps of scanned digits: each bitmap is divided
into 64 non-overlapping 4x4 blocks and the set pixels of each block are
counted, giving an 8x8 image of counts 0..16. The digits classifiers among the
examples take those counts; this servable computes them from a bitmap, so a
pipeline can start from the bitmap itself.

Contract: predict(inputs) takes a dict of numpy arrays keyed by the signature's
input names and returns a dict keyed by its output names.
"""

import numpy as np


def block_counts(bitmap):
    """bitmap: [batch, 32, 32] of 0/1 -> [batch, 64] FP32 counts, row-major blocks."""
    b = np.asarray(bitmap)
    if b.ndim != 3 or b.shape[1:] != (32, 32):
        raise ValueError("bitmap must have shape [batch, 32, 32], got %s" % list(b.shape))
    if np.any(b > 1):
        raise ValueError("bitmap pixels must be 0 or 1")
    blocks = b.astype(np.int64).reshape(b.shape[0], 8, 4, 8, 4)
    return blocks.sum(axis=(2, 4)).reshape(b.shape[0], 64).astype(np.float32)


def predict(inputs):
    """inputs: bitmap UINT8 [batch, 32, 32]. Returns {"pixels": FP32 [batch, 64]}."""
    return {"pixels": block_counts(inputs["bitmap"])}
