import TFServing
import XCTest

final class ModelCatalogTests: XCTestCase {
    private func version(_ v: Int64, _ state: ServableAnnouncement.State, error: String? = nil) -> ServableAnnouncement.Version {
        .init(version: v, state: state, error: error, kind: .image, inputShape: [299, 299, 3], classes: 1000)
    }

    func testMergesWorkersAndResolvesLatestVersionsAndLabels() throws {
        let catalog = ModelCatalog()
        catalog.update(.init(worker: "w1", models: [.init(name: "m", versions: [version(1, .available), version(2, .loading)],
                                                          labels: ["stable": 1, "canary": 2])]))
        catalog.update(.init(worker: "w2", models: [.init(name: "m", versions: [version(1, .available)])]))
        XCTAssertEqual(try catalog.resolve(model: "m", .latest).version, 1, "version 2 is still loading")
        XCTAssertEqual(try catalog.resolve(model: "m", .label("stable")).version, 1)
        XCTAssertThrowsError(try catalog.resolve(model: "m", .label("canary"))) {
            XCTAssertTrue("\($0)".contains("not available"), "\($0)")
        }
        catalog.update(.init(worker: "w2", models: [.init(name: "m", versions: [version(1, .available), version(2, .available)])]))
        XCTAssertEqual(try catalog.resolve(model: "m", .latest).version, 2)
        XCTAssertEqual(try catalog.resolve(model: "m", .label("canary")).version, 2)
        XCTAssertEqual(try catalog.status(model: "m", .latest).map(\.state), [.available, .available])
        catalog.remove(worker: "w2")
        XCTAssertEqual(try catalog.resolve(model: "m", .latest).version, 1)
        XCTAssertEqual(catalog.modelNames, ["m"])
    }

    func testNotFoundMessagesFollowTFServing() {
        let catalog = ModelCatalog()
        catalog.update(.init(worker: "w", models: [.init(name: "m", versions: [version(3, .end, error: "no HDF5 file"),
                                                                               version(1, .available)])]))
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return "\((error as? TFServingError)?.code ?? .internal): \(error)" }
        }
        XCTAssertEqual(message { try catalog.resolve(model: "x", .latest) }, "notFound: Servable not found for request: Latest(x)")
        XCTAssertEqual(message { try catalog.resolve(model: "m", .version(3)) }, "notFound: Servable not found for request: Specific(m, 3)")
        XCTAssertEqual(message { try catalog.resolve(model: "m", .label("prod")) }, "notFound: Unrecognized servable version label: prod")
        XCTAssertEqual(message { try catalog.status(model: "x", .latest) }, "notFound: Could not find any versions of model x")
        XCTAssertEqual(message { try catalog.status(model: "m", .version(7)) }, "notFound: Could not find version 7 of model m")
        XCTAssertEqual(StatusJSON.status(try! catalog.status(model: "m", .latest)).serialized,
                       #"{"model_version_status":[{"version":"3","state":"END","status":{"error_code":"UNKNOWN","error_message":"no HDF5 file"}},{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}"#)
    }

    func testMetadataOfATensorModelIsItsExportsSignature() throws {
        let catalog = ModelCatalog()
        catalog.update(.init(worker: "w", models: [.init(name: "mnist", versions: [
            .init(version: 2, state: .available, kind: .tensor, inputShape: [28, 28], classes: 10,
                  tensorSignature: .init(keys: ["serving_default"], input: "flatten_input", output: "dense_1", outputShape: [10])),
        ]), .init(name: "mnist3", versions: [
            .init(version: 1, state: .available, kind: .tensor, inputShape: [28, 28], classes: 10,
                  tensorSignature: .init(keys: ["serve", "serving_default"], input: "input_layer", output: "output_0", outputShape: [10])),
        ])]))
        let json = StatusJSON.metadata(try catalog.resolve(model: "mnist", .latest))
        XCTAssertEqual(json["model_spec"]?.serialized, #"{"name":"mnist","signature_name":"","version":"2"}"#)
        let defs = json["metadata"]?["signature_def"]?["signature_def"]
        XCTAssertEqual(defs?.serialized, """
            {"serving_default":{"inputs":{"flatten_input":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""},\
            {"size":"28","name":""},{"size":"28","name":""}],"unknown_rank":false},"name":"flatten_input:0"}},\
            "outputs":{"dense_1":{"dtype":"DT_FLOAT","tensor_shape":{"dim":[{"size":"-1","name":""},{"size":"10","name":""}],\
            "unknown_rank":false},"name":"dense_1:0"}},"method_name":"tensorflow/serving/predict"}}
            """)
        let keras3 = StatusJSON.metadata(try catalog.resolve(model: "mnist3", .latest))["metadata"]?["signature_def"]?["signature_def"]
        XCTAssertEqual(keras3?["serve"], keras3?["serving_default"])
        XCTAssertNotNil(keras3?["serving_default"]?["outputs"]?["output_0"])
    }
}

final class RESTPathTests: XCTestCase {
    func testParsesTFServingRoutesCaseInsensitively() {
        XCTAssertEqual(RESTPath(method: "GET", path: "/v1/models/mnist"), RESTPath(model: "mnist", selector: .latest, action: .status))
        XCTAssertEqual(RESTPath(method: "GET", path: "/V1/Models/mnist/Versions/2/METADATA"),
                       RESTPath(model: "mnist", selector: .version(2), action: .metadata))
        XCTAssertEqual(RESTPath(method: "GET", path: "/v1/models/m/labels/stable"),
                       RESTPath(model: "m", selector: .label("stable"), action: .status))
        XCTAssertEqual(RESTPath(method: "POST", path: "/v1/models/inception_v3:predict"),
                       RESTPath(model: "inception_v3", selector: .latest, action: .predict))
        XCTAssertEqual(RESTPath(method: "POST", path: "/v1/models/m/labels/canary:Classify"),
                       RESTPath(model: "m", selector: .label("canary"), action: .classify))
        XCTAssertEqual(RESTPath(method: "POST", path: "/v1/models/m/versions/3:regress"),
                       RESTPath(model: "m", selector: .version(3), action: .regress))
        for (method, path) in [("GET", "/v1/models/"), ("GET", "/v1/models/m/versions/x"), ("GET", "/v1/models/m/other"),
                               ("POST", "/v1/models/m"), ("POST", "/v1/models/m:explode"), ("DELETE", "/v1/models/m"),
                               ("GET", "/v2/models/m"), ("POST", "/v1/models/m/metadata:predict")] {
            XCTAssertNil(RESTPath(method: method, path: path), "\(method) \(path)")
        }
    }
}
