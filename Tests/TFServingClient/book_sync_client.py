"""The three calls of the book's synchronous-pattern client, made as the book
makes them (same requests, same keys read), against a running Conveyor:

- gRPC `PredictionService.Predict` on `inception_v3` / `serving_default`, with
  `inputs["image"]` a one-element string tensor of URL-safe base64, reading
  `outputs["output_0"].string_val[0]`;
- REST `POST /v1/models/inception_v3:predict` with
  `{"inputs": {"image": [<url-safe base64>]}}`, reading `outputs[0]`;
- REST `GET /v1/models/inception_v3/versions/0/metadata`.

Written for these tests (not the book's file), with the book's defaults: port
8500 for gRPC, 8501 for REST, a 5 s gRPC deadline. Prints what each call
returned and exits non-zero (with the reason) on any mismatch.

    python book_sync_client.py --image cat.jpg --label "Siamese cat" [--address localhost]
"""
import argparse
import base64
import json
import sys

import grpc
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def request_grpc(image, model_spec_name="inception_v3", signature_name="serving_default",
                 address="localhost", port=8500, timeout_second=5):
    channel = grpc.insecure_channel(f"{address}:{port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    base64_image = base64.urlsafe_b64encode(image)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_spec_name
    request.model_spec.signature_name = signature_name
    request.inputs["image"].CopyFrom(tf.make_tensor_proto([base64_image]))
    response = stub.Predict(request, timeout_second)
    return response.outputs["output_0"].string_val[0].decode("utf-8")


def request_rest(image, model_spec_name="inception_v3", address="localhost", port=8501):
    url = f"http://{address}:{port}/v1/models/{model_spec_name}:predict"
    headers = {"Content-Type": "application/json"}
    base64_image = base64.urlsafe_b64encode(image).decode("ascii")
    request_dict = {"inputs": {"image": [base64_image]}}
    response = requests.post(url, json.dumps(request_dict), headers=headers)
    return dict(response.json())["outputs"][0]


def request_metadata(model_spec_name="inception_v3", address="localhost", port=8501):
    url = f"http://{address}:{port}/v1/models/{model_spec_name}/versions/0/metadata"
    return requests.get(url).json()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--label", required=True, help="the top-1 label the pipeline must answer")
    p.add_argument("--address", default="localhost")
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--rest-port", type=int, default=8501)
    args = p.parse_args()
    image = open(args.image, "rb").read()
    failures = []

    def check(what, got, want):
        print(f"{'ok  ' if got == want else 'FAIL'} {what}: {got!r}")
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    check("grpc prediction", request_grpc(image, address=args.address, port=args.grpc_port), args.label)
    check("rest prediction", request_rest(image, address=args.address, port=args.rest_port), args.label)
    metadata = request_metadata(address=args.address, port=args.rest_port)
    print(json.dumps(metadata))
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    check("metadata version", metadata["model_spec"]["version"], "0")
    check("metadata inputs", {k: (v["dtype"], [d["size"] for d in v["tensor_shape"]["dim"]])
                              for k, v in signature["inputs"].items()}, {"image": ("DT_STRING", ["-1"])})
    check("metadata outputs", {k: (v["dtype"], [d["size"] for d in v["tensor_shape"]["dim"]])
                               for k, v in signature["outputs"].items()}, {"output_0": ("DT_STRING", ["-1"])})
    check("metadata method", signature["method_name"], "tensorflow/serving/predict")
    if failures:
        sys.exit("book client failed:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
