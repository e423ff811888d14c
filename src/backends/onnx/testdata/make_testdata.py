#!/usr/bin/python3
"""Writes the small ONNX graphs used by onnx_test.cc (opset 13, batch axis "N").

- unsupported_op.onnx: x -> Relu (relu_1) -> Hardmax (hardmax_1) -> y; OpenCV 4.6 DNN has
  no Hardmax layer, so loading it must fail naming the operator.
- renamed_io.onnx: data + bias -> out, with the initializer `bias` also listed among the
  graph inputs (as older exporters did); the signature's names differ (x, y), so the
  backend binds by position.
- two_in_two_out.onnx: a, b -> sum = a + b, product = a * b.

Run with Debian's interpreter from this directory: /usr/bin/python3 make_testdata.py
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def value(name):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 4])


def save(nodes, inputs, outputs, name, initializers=()):
    graph = helper.make_graph(nodes, name.split(".")[0], [value(n) for n in inputs],
                              [value(n) for n in outputs], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="orrery-testdata")
    onnx.checker.check_model(model)
    onnx.save(model, name)


def main():
    save([helper.make_node("Relu", ["x"], ["r"], name="relu_1"),
          helper.make_node("Hardmax", ["r"], ["y"], name="hardmax_1")],
         ["x"], ["y"], "unsupported_op.onnx")
    bias = numpy_helper.from_array(np.array([1, 2, 3, 4], dtype=np.float32), "bias")
    graph_inputs = [value("data"), helper.make_tensor_value_info("bias", TensorProto.FLOAT, [4])]
    graph = helper.make_graph([helper.make_node("Add", ["data", "bias"], ["out"], name="add")],
                              "renamed_io", graph_inputs, [value("out")], initializer=[bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="orrery-testdata")
    onnx.checker.check_model(model)
    onnx.save(model, "renamed_io.onnx")
    save([helper.make_node("Add", ["a", "b"], ["sum"], name="add"),
          helper.make_node("Mul", ["a", "b"], ["product"], name="mul")],
         ["a", "b"], ["sum", "product"], "two_in_two_out.onnx")


if __name__ == "__main__":
    main()
