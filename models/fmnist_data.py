"""Fashion-MNIST as the bundled model sees it: the Debian package's IDX files
(dataset-fashion-mnist), normalised with the training set's mean and standard deviation. The one
place the normalisation lives; the training script, the main job and the accuracy bench import it.
"""
import gzip
import os

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def load(kind):
    """Images [N, 1, 28, 28] float32 normalised, labels [N] int64; kind is "train" or "t10k"."""
    with gzip.open(os.path.join(DATA, f"{kind}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, f"{kind}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32), labels.astype(np.int64)
