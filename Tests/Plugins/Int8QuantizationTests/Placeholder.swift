import XCTest
final class Int8QuantizationSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
