import XCTest

@testable import MQTT

/// The client's own topic matching, against the MQTT 5 specification's examples (4.7).
final class TopicFilterTests: XCTestCase {
    func testWildcardsAsTheSpecificationDefinesThem() {
        let cases: [(topic: String, filter: String, matches: Bool)] = [
            ("sport/tennis/player1", "sport/tennis/player1/#", true),
            ("sport/tennis/player1/ranking", "sport/tennis/player1/#", true),
            ("sport/tennis/player1/score/wimbledon", "sport/tennis/player1/#", true),
            ("sport", "sport/#", true),
            ("sport/tennis/player1", "sport/tennis/+", true),
            ("sport/tennis/player1/ranking", "sport/tennis/+", false),
            ("sport", "sport/+", false),
            ("sport/", "sport/+", true),
            ("/finance", "+/+", true),
            ("/finance", "/+", true),
            ("/finance", "+", false),
            ("anything/at/all", "#", true),
            ("$SYS/broker/uptime", "#", false),
            ("$SYS/broker/uptime", "+/broker/uptime", false),
            ("$SYS/broker/uptime", "$SYS/#", true),
            ("conveyor/v1/results/abc", "conveyor/v1/results/+", true),
            ("conveyor/v1/results/abc/x", "conveyor/v1/results/+", false),
            ("conveyor/v1/results", "conveyor/v1/results/+", false),
        ]
        for c in cases {
            XCTAssertEqual(TopicFilter.matches(c.topic, filter: c.filter), c.matches, "\(c.topic) against \(c.filter)")
        }
    }

    func testSharedSubscriptionsMatchWithoutTheirGroup() {
        XCTAssertEqual(TopicFilter.local("$share/workers/conveyor/v1/requests/m"), "conveyor/v1/requests/m")
        XCTAssertEqual(TopicFilter.local("conveyor/v1/requests/#"), "conveyor/v1/requests/#")
        XCTAssertEqual(TopicFilter.local("$share/nogroup"), "$share/nogroup")
    }
}
