import XCTest
final class CInt8TestsSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
