import XCTest
final class FineTuneSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
