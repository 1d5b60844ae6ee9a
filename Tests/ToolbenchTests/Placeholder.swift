import XCTest
final class ToolbenchSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
