"""TF Serving's Python client (`tensorflow-serving-api` over gRPC, `requests`
over REST) against a running Conveyor serving a model repository: Predict,
Classify, metadata and status, on InceptionV3 and LeNet. Exits non-zero (with
the reason) on any mismatch. (The book's own three calls, exactly as the book
makes them, are in book_sync_client.py.)

    python tf_serving_client.py --host 127.0.0.1 --rest-port 8501 --grpc-port 8500 \
        --image cat.jpg --label "Egyptian cat" --mnist-dir ../shared/data/mnist/idx
"""
import argparse
import base64
import gzip
import sys

import grpc
import requests
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

failures = []


def check(what, got, want):
    if got != want:
        failures.append(f"{what}: got {got!r}, want {want!r}")
    print(f"{'ok  ' if got == want else 'FAIL'} {what}: {got!r}")


def mnist_digits(folder, count):
    """The first test digits as LeNet takes them: 28 rows of 28 one-channel pixels, 0-255."""
    with gzip.open(f"{folder}/t10k-images-idx3-ubyte.gz") as f:
        images = f.read()[16:16 + count * 784]
    with gzip.open(f"{folder}/t10k-labels-idx1-ubyte.gz") as f:
        labels = f.read()[8:8 + count]
    return [([[[float(images[i * 784 + r * 28 + c])] for c in range(28)] for r in range(28)], labels[i])
            for i in range(count)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--rest-port", type=int, default=8501)
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--image", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--mnist-dir", required=True)
    args = p.parse_args()
    jpeg = open(args.image, "rb").read()
    urlsafe = base64.urlsafe_b64encode(jpeg).decode()

    # --- gRPC, as the book's client: PredictionService.Predict on serving_default.
    channel = grpc.insecure_channel(f"{args.host}:{args.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "inception_v3"
    request.model_spec.signature_name = "serving_default"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto([urlsafe]))
    result = stub.Predict(request, 60.0)
    check("grpc predict (url-safe base64 string)", result.outputs["output_0"].string_val[0].decode(), args.label)
    check("grpc predict model_spec.version", result.model_spec.version.value, 1)

    request.inputs["image"].CopyFrom(tf.make_tensor_proto([jpeg]))
    result = stub.Predict(request, 60.0)
    check("grpc predict (JPEG bytes)", result.outputs["output_0"].string_val[0].decode(), args.label)

    # Classify with a tf.Example holding the encoded image.
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "inception_v3"
    example = classify.input.example_list.examples.add()
    example.features.feature["image"].bytes_list.value.append(jpeg)
    classes = stub.Classify(classify, 60.0).result.classifications[0].classes
    check("grpc classify top label", classes[0].label, args.label)
    check("grpc classify class count", len(classes), 5)

    # Metadata and status.
    meta_request = get_model_metadata_pb2.GetModelMetadataRequest()
    meta_request.model_spec.name = "mnist"
    meta_request.metadata_field.append("signature_def")
    meta = stub.GetModelMetadata(meta_request, 30.0)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(signatures)
    # LeNet's SavedModel export: serving_default, input "input" [-1, 28, 28, 1], output "fc2".
    lenet = signatures.signature_def["serving_default"]
    check("grpc metadata mnist signatures", sorted(signatures.signature_def.keys()), ["serving_default"])
    check("grpc metadata mnist input dtype", tf.dtypes.as_dtype(lenet.inputs["input"].dtype).name, "float32")
    check("grpc metadata mnist input shape", [d.size for d in lenet.inputs["input"].tensor_shape.dim], [-1, 28, 28, 1])
    check("grpc metadata mnist output shape", [d.size for d in lenet.outputs["fc2"].tensor_shape.dim], [-1, 10])

    model_stub = model_service_pb2_grpc.ModelServiceStub(channel)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "mnist"
    status = model_stub.GetModelStatus(status_request, 30.0)
    check("grpc model status", sorted((s.version, s.state) for s in status.model_version_status),
          [(1, get_model_status_pb2.ModelVersionStatus.AVAILABLE), (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE)])

    # LeNet on MNIST: one 28x28x1 digit in, 10 scores out.
    for i, (pixels, label) in enumerate(mnist_digits(args.mnist_dir, 5)):
        mnist = predict_pb2.PredictRequest()
        mnist.model_spec.name = "mnist"
        mnist.inputs["input"].CopyFrom(tf.make_tensor_proto([pixels], dtype=tf.float32))
        scores = list(stub.Predict(mnist, 60.0).outputs["fc2"].float_val)
        check(f"grpc mnist digit {i}", scores.index(max(scores)), label)

    try:
        missing = predict_pb2.PredictRequest()
        missing.model_spec.name = "no_such_model"
        missing.inputs["image"].CopyFrom(tf.make_tensor_proto([jpeg]))
        stub.Predict(missing, 30.0)
        check("grpc unknown model", "answered", "NOT_FOUND")
    except grpc.RpcError as error:
        check("grpc unknown model", error.code(), grpc.StatusCode.NOT_FOUND)

    # --- REST with requests, as the book's REST client.
    base = f"http://{args.host}:{args.rest_port}/v1/models"
    reply = requests.post(f"{base}/inception_v3:predict", json={"inputs": {"image": [urlsafe]}}, timeout=60)
    check("rest predict status", reply.status_code, 200)
    check("rest predict", reply.json().get("outputs"), [args.label])
    reply = requests.post(f"{base}/mobilenet_v2:predict",
                          json={"instances": [{"b64": base64.b64encode(jpeg).decode()}]}, timeout=60)
    check("rest mobilenet predict status", reply.status_code, 200)
    pixels, label = mnist_digits(args.mnist_dir, 1)[0]
    reply = requests.post(f"{base}/mnist:predict", json={"instances": [pixels]}, timeout=60)
    scores = reply.json()["predictions"][0]
    check("rest mnist", scores.index(max(scores)), label)
    reply = requests.get(f"{base}/mnist/labels/stable", timeout=30)
    check("rest status by label", reply.json()["model_version_status"][0]["version"], "1")

    if failures:
        print("\n".join(["FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("tf serving client: all checks passed")


if __name__ == "__main__":
    main()
