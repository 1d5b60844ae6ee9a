import XCTest
final class LoRAMergeSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
