"""The gRPC tutorial's client against a running Conveyor, checked against
TensorFlow itself: for each quickstart fixture, Keras exports the model as a
SavedModel (what TF Serving would serve), and

- Conveyor's GetModelMetadata must list the export's serving signatures
  (keys, input and output names, dtypes, shapes, method);
- gRPC Predict with `inputs[<input>]` as a [N, 28, 28] tensor must give the
  reference logits in `outputs[<output>]` (within 1e-4);
- each probe body over REST (the tutorial's one flat list of 784 values
  first) must be taken or refused as TensorFlow's session takes or refuses
  the same tensor in the exported graph, which is what TF Serving runs:
  same values, or a 400 with TensorFlow's message.

Exits non-zero (with the reasons) on any mismatch.

    python tutorial_client.py --host 127.0.0.1 --rest-port 8501 --grpc-port 8500 \
        --fixtures ../shared/models/mnist_quickstart --mnist-dir ../shared/data/mnist/idx \
        --work /tmp/x --model mnist_quickstart=model.h5 --model mnist_keras3=model.keras
"""
import argparse
import gzip
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,  # noqa: E402
                                     prediction_service_pb2_grpc)

failures = []


def check(what, ok, detail):
    if not ok:
        failures.append(f"{what}: {detail}")
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")


def signature_map(defs):
    """Signature defs as plain values, without TensorFlow's init op."""
    out = {}
    for key, sig in defs.items():
        if key == "__saved_model_init_op":
            continue
        out[key] = {
            "method": sig.method_name,
            "inputs": {k: (v.dtype, [d.size for d in v.tensor_shape.dim]) for k, v in sig.inputs.items()},
            "outputs": {k: (v.dtype, [d.size for d in v.tensor_shape.dim]) for k, v in sig.outputs.items()},
        }
    return out


def export(fixture, target):
    """Keras's own export of the fixture, as a TF Serving user makes it."""
    shutil.rmtree(target, ignore_errors=True)
    if fixture.endswith(".h5"):
        import tf_keras
        tf_keras.models.load_model(fixture).save(target, save_format="tf")
    else:
        import keras
        keras.models.load_model(fixture).export(target, verbose=False)
    from tensorflow.python.tools import saved_model_utils
    return saved_model_utils.get_meta_graph_def(target, "serve")


def tensorflow_run(path, signature, feed):
    """What TF Serving does with a request: Session::Run of the exported graph
    with the tensor as sent (TF Serving checks no shape). Returns
    ("ok", output) or ("error", TensorFlow's message)."""
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        (inp,) = signature.inputs.values()
        (out,) = signature.outputs.values()
        t_in = graph.get_tensor_by_name(inp.name)
        t_out = graph.get_tensor_by_name(out.name)
        try:
            # The session's C API, below Python's own feed shape check.
            result = session._call_tf_sessionrun(None, {t_in._as_tf_output(): feed}, [t_out._as_tf_output()], [], None)
            return "ok", result[0]
        except tf.errors.InvalidArgumentError as error:
            return "error", error.message.split("\n")[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--rest-port", type=int, default=8501)
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--fixtures", required=True)
    p.add_argument("--mnist-dir", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--model", action="append", required=True, help="NAME=FILE: a served model and its fixture file")
    args = p.parse_args()

    with gzip.open(f"{args.mnist_dir}/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:16 + 20 * 784], dtype=np.uint8).reshape(20, 28, 28).astype(np.float32) / 255
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"{args.host}:{args.grpc_port}"))

    for entry in args.model:
        name, file = entry.split("=", 1)
        reference_file = "reference.json" if file.endswith(".h5") else "reference_keras3.json"
        reference = np.array(json.load(open(f"{args.fixtures}/{reference_file}"))["logits"], dtype=np.float32)
        saved = f"{args.work}/{name}/1"
        meta_graph = export(f"{args.fixtures}/{file}", saved)
        tensorflow_signatures = signature_map(meta_graph.signature_def)
        default = meta_graph.signature_def["serving_default"]
        (input_name,) = default.inputs.keys()
        (output_name,) = default.outputs.keys()

        # Metadata: Conveyor's signatures are the export's.
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = name
        request.metadata_field.append("signature_def")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(request, 30.0).metadata["signature_def"].Unpack(signatures)
        conveyor_signatures = signature_map(signatures.signature_def)
        check(f"{name} metadata equals TensorFlow's export", conveyor_signatures == tensorflow_signatures,
              f"Conveyor {conveyor_signatures}, TensorFlow {tensorflow_signatures}")

        # The tutorial's gRPC request: inputs[<input>] as [N, 28, 28], outputs[<output>].
        predict = predict_pb2.PredictRequest()
        predict.model_spec.name = name
        predict.model_spec.signature_name = "serving_default"
        predict.inputs[input_name].CopyFrom(tf.make_tensor_proto(images, dtype=tf.float32))
        response = stub.Predict(predict, 120.0)
        output = tf.make_ndarray(response.outputs[output_name])
        diff = float(np.abs(output - reference).max()) if output.shape == reference.shape else float("inf")
        check(f"{name} grpc predict [20, 28, 28] -> outputs[{output_name!r}]", diff <= 1e-4,
              f"shape {list(output.shape)}, max abs diff {diff:.3g}")
        print(f"grpc {name} max abs diff {diff:.9g}")

        one = predict_pb2.PredictRequest()
        one.model_spec.name = name
        one.inputs[input_name].CopyFrom(tf.make_tensor_proto(images[:1], dtype=tf.float32))
        single = tf.make_ndarray(stub.Predict(one, 60.0).outputs[output_name])
        check(f"{name} grpc predict one example", single.shape == (1, 10) and float(np.abs(single - reference[:1]).max()) <= 1e-4,
              f"shape {list(single.shape)}")

        # Probes: the tutorial's flat list first, then other shapes of one example's values.
        first = images[0].reshape(784)
        probes = [("the tutorial's flat 784-value list", first), ("[1, 784]", first.reshape(1, 784)),
                  ("[28, 28]", first.reshape(28, 28)), ("[4, 196]", first.reshape(4, 196)), ("[783]", first[:783])]
        for label, value in probes:
            want = tensorflow_run(saved, default, value)
            reply = requests.post(f"http://{args.host}:{args.rest_port}/v1/models/{name}:predict",
                                  json={"inputs": value.tolist()}, timeout=120)
            body = reply.json()
            if want[0] == "ok":
                got = np.array(body.get("outputs", []), dtype=np.float32)
                same = reply.status_code == 200 and got.shape == want[1].shape and float(np.abs(got - want[1]).max()) <= 1e-4
                check(f"{name} REST {label}", same, f"TensorFlow takes it (output {list(want[1].shape)}); "
                      f"Conveyor answered {reply.status_code} {json.dumps(body)[:160]}")
            else:
                same = reply.status_code == 400 and body.get("error") == want[1]
                check(f"{name} REST {label}", same, f"TensorFlow refuses it ({want[1]!r}); "
                      f"Conveyor answered {reply.status_code} {json.dumps(body)[:160]}")
        flat = predict_pb2.PredictRequest()
        flat.model_spec.name = name
        flat.inputs[input_name].CopyFrom(tf.make_tensor_proto(first, dtype=tf.float32))
        want = tensorflow_run(saved, default, first)
        try:
            got = tf.make_ndarray(stub.Predict(flat, 60.0).outputs[output_name])
            check(f"{name} grpc flat [784]", want[0] == "ok" and float(np.abs(got - want[1]).max()) <= 1e-4,
                  f"Conveyor took it, TensorFlow: {want[0]}")
        except grpc.RpcError as error:
            check(f"{name} grpc flat [784]", want[0] == "error" and error.code() == grpc.StatusCode.INVALID_ARGUMENT
                  and error.details() == want[1], f"Conveyor: {error.code()} {error.details()!r}, TensorFlow: {want}")

    if failures:
        print("\n".join(["FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("tutorial client: all checks passed")


if __name__ == "__main__":
    main()
