import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Ingress
import MQTT
import XCTest

/// The job API's router in process (no socket, no broker): routes that answer without the
/// pipeline, and the JSON shape of every error.
final class JobAPIRouterTests: XCTestCase {
    private func application(apiKeys: Set<String> = []) -> some ApplicationProtocol {
        var configuration = IngressConfiguration(broker: MQTTConfiguration(host: "127.0.0.1", port: 1, clientID: "router-test"))
        configuration.apiKeys = apiKeys
        configuration.maxBodyBytes = 1000
        let service = IngressService(configuration: configuration, model: nil)
        return Application(router: service.makeRouter())
    }

    private static func errorMessage(_ buffer: ByteBuffer) throws -> String? {
        (try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])?["error"] as? String
    }

    func testHealthAndErrorsAreJSON() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), #"{"health":"ok"}"#)
            }
            try await client.execute(uri: "/nope", method: .get) { response in
                XCTAssertEqual(response.status, .notFound)
                XCTAssertEqual(response.headers[.contentType], "application/json")
                XCTAssertEqual(try Self.errorMessage(response.body), "no route for GET /nope")
            }
            try await client.execute(uri: "/predict", method: .delete) { response in
                XCTAssertEqual(response.status, .methodNotAllowed)
                XCTAssertEqual(response.headers[.allow], "POST")
                XCTAssertNotNil(try Self.errorMessage(response.body))
            }
            try await client.execute(uri: "/job/abc", method: .put) { response in
                XCTAssertEqual(response.status, .methodNotAllowed)
                XCTAssertEqual(response.headers[.allow], "GET, DELETE")
            }
        }
    }

    func testBadSubmissionsAreRefusedBeforeAnythingIsPublished() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/predict", method: .post, body: ByteBuffer(string: "not json")) { response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertNotNil(try Self.errorMessage(response.body))
            }
            try await client.execute(uri: "/predict", method: .post,
                                     body: ByteBuffer(string: String(repeating: "x", count: 2000))) { response in
                XCTAssertEqual(response.status, .contentTooLarge)
            }
            try await client.execute(uri: "/job/not%20an%20id", method: .get) { response in
                XCTAssertEqual(response.status, .notFound)
            }
        }
    }

    func testAPIKeysGuardEveryRouteButTheProbes() async throws {
        try await application(apiKeys: ["k1"]).test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/health/live", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/metrics", method: .get) { XCTAssertEqual($0.status, .ok) }
            // Never connected, no ledger stats: not ready, and it says why.
            try await client.execute(uri: "/health/ready", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                let checks = body?["checks"] as? [String: String]
                XCTAssertEqual(checks?["broker"], "not connected to the broker")
                XCTAssertEqual(checks?["ledger"], "no ledger stats from the result store: none received yet")
            }
            try await client.execute(uri: "/metrics", method: .post) { XCTAssertEqual($0.status, .methodNotAllowed) }
            try await client.execute(uri: "/label", method: .get) { response in
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertEqual(response.headers[.wwwAuthenticate], "Bearer")
                XCTAssertNotNil(try Self.errorMessage(response.body))
            }
            try await client.execute(uri: "/predict", method: .post, headers: [.authorization: "Bearer nope"],
                                     body: ByteBuffer(string: "{}")) { XCTAssertEqual($0.status, .unauthorized) }
            try await client.execute(uri: "/predict", method: .post, headers: [.authorization: "Bearer k1"],
                                     body: ByteBuffer(string: "{}")) { XCTAssertEqual($0.status, .badRequest) }
        }
    }
}
