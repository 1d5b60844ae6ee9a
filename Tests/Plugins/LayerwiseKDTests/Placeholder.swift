import XCTest
final class LayerwiseKDSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
