import ModelRepository
import XCTest

final class ModelConfigFileTests: XCTestCase {
    func testParsesTFServingConfigWithPoliciesAndLabels() throws {
        let text = """
        # two models, as TF Serving's docs write them
        model_config_list {
          config {
            name: 'inception_v3'
            base_path: '/models/inception_v3'
            model_platform: 'tensorflow'
            model_version_policy { specific { versions: 1 versions: 2 } }
            version_labels { key: 'stable' value: 1 }
            version_labels { key: 'canary' value: 2 }
          }
          config {
            name: "mnist"
            base_path: "mnist"
            model_platform: "tensorflow"
            model_version_policy { latest { num_versions: 2 } }
          }
          config { name: "mobilenet_v2" base_path: "/m" model_version_policy { all {} } }
          config { name: "plain" base_path: "/p" }
        }
        """
        let sources = try ModelConfigFile.parse(text, relativeTo: "/etc/conveyor")
        XCTAssertEqual(sources.map(\.name), ["inception_v3", "mnist", "mobilenet_v2", "plain"])
        XCTAssertEqual(sources[0].policy, .specific([1, 2]))
        XCTAssertEqual(sources[0].labels, ["stable": 1, "canary": 2])
        XCTAssertEqual(sources[0].basePath, "/models/inception_v3")
        XCTAssertEqual(sources[1].policy, .latest(2))
        XCTAssertEqual(sources[1].basePath, "/etc/conveyor/mnist", "relative to the config file's folder")
        XCTAssertEqual(sources[2].policy, .all)
        XCTAssertEqual(sources[3].policy, .latest(1), "TF Serving's default policy")
    }

    func testRejectsInvalidConfigsWithTheReason() {
        let cases: [(String, String)] = [
            ("model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }", "configured twice"),
            ("model_config_list { config { name: 'a' base_path: '/a' version_labels { key: 'bad-label' value: 1 } } }", "must match [a-zA-Z0-9_]+"),
            ("model_config_list { config { name: 'a' base_path: '/a' model_platform: 'pytorch' } }", "not supported"),
            ("model_config_list { config { name: 'a' } }", "has no base_path"),
            ("model_config_list { config { name: 'a/b' base_path: '/a' } }", "not valid"),
            ("model_config_list { config { name: 'a' base_path: '/a' model_version_policy { specific { } } } }", "lists no versions"),
            ("model_config_list { config { nme: 'a' } }", "not valid ModelServerConfig text"),
            ("", "no model_config_list"),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try ModelConfigFile.parse(text, relativeTo: "/"), text) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
            }
        }
    }

    func testLoadReportsAMissingFile() {
        XCTAssertThrowsError(try ModelConfigFile.load("/nonexistent/models.config")) { error in
            XCTAssertTrue("\(error)".contains("cannot read model config file /nonexistent/models.config"))
        }
    }

    func testVersionPolicySelection() {
        let found: [Int64] = [3, 1, 10, 2]
        XCTAssertEqual(VersionPolicy.latest(1).select(from: found), [10])
        XCTAssertEqual(VersionPolicy.latest(2).select(from: found), [10, 3])
        XCTAssertEqual(VersionPolicy.latest(9).select(from: found), [10, 3, 2, 1])
        XCTAssertEqual(VersionPolicy.all.select(from: found), [10, 3, 2, 1])
        XCTAssertEqual(VersionPolicy.specific([2, 7]).select(from: found), [2])
        XCTAssertEqual(VersionPolicy.latest(1).select(from: []), [])
    }

    func testNamesAndLabels() {
        XCTAssertTrue(ModelName.isValid("inception_v3"))
        XCTAssertTrue(ModelName.isValid("mobilenet-v2.1"))
        for bad in ["", "a/b", "a+b", "a#", "..", String(repeating: "x", count: 65), "é"] {
            XCTAssertFalse(ModelName.isValid(bad), bad)
        }
        XCTAssertTrue(VersionLabel.isValid("stable_2"))
        XCTAssertFalse(VersionLabel.isValid("canary-1"))
        XCTAssertFalse(VersionLabel.isValid(""))
    }
}
