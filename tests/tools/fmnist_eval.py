"""An evaluator for `amctq auto --eval-cmd`: top-1 accuracy in percent of a Fashion-MNIST model
(the bundled CNN or ViT, input [N, 1, 28, 28]) in ONNX Runtime on the first N test images,
printed as the last line.

usage: fmnist_eval.py MODEL.onnx [N]    (N: 2000 by default; the test set has 10000)
"""
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
import fmnist_data  # noqa: E402


def main():
    model = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    images, labels = fmnist_data.load("t10k")
    images, labels = images[:n], labels[:n]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    correct = 0
    for start in range(0, n, 500):
        logits = sess.run(None, {name: images[start:start + 500]})[0]
        correct += int((logits.argmax(axis=1) == labels[start:start + 500]).sum())
    print(f"{100.0 * correct / n:.2f}")


if __name__ == "__main__":
    main()
