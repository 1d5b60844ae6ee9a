import XCTest
final class LayerPruningSmoke: XCTestCase { func testBuilds() { XCTAssertEqual(1 + 1, 2) } }
