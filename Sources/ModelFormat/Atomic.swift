import Common
import Foundation

/// The one place that touches Common's crash-safe writers (kept separate so the rest of the
/// module reads as format logic).
enum AtomicFileShim {
    static func write(_ data: Data, to url: URL) throws { try AtomicFile.write(data, to: url) }
    static func writeDirectory(_ url: URL, _ body: (URL) throws -> Void) throws { try AtomicFile.writeDirectory(url, body) }
}
