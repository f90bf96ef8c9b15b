"""A made-up evaluator for the `amctq auto` test: 90 for a model whose layer SENSITIVE is float,
80 when it is quantized (its weight comes from a DequantizeLinear), whatever else is quantized.
Every call appends the model's quantized layers to LOG, so the test sees the evaluation order.

usage: auto_fake_eval.py MODEL.onnx SENSITIVE LOG
"""
import sys

import onnx


def main():
    model, sensitive, log = sys.argv[1:4]
    g = onnx.load(model).graph
    made_by = {o: n for n in g.node for o in n.output}
    quantized = sorted(n.name for n in g.node
                       if any(made_by.get(i) is not None and made_by[i].op_type == "DequantizeLinear"
                              for i in n.input[1:2]))
    with open(log, "a") as f:
        f.write(" ".join(quantized) + "\n")
    print("evaluating", model)
    print(80.0 if sensitive in quantized else 90.0)


if __name__ == "__main__":
    main()
