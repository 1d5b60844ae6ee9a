import Foundation

/// Every failure of data preparation or loading. Each message names the file, the line
/// (when there is one), the offending text and what to do about it, because the person
/// reading it is usually looking at a 10-million-line file they did not write.
public enum RecDataError: Error, CustomStringConvertible, Equatable {
    /// A line that does not parse in the chosen format.
    case malformedLine(file: String, line: Int, text: String, reason: String)
    /// The format could not be determined or is not one we know.
    case unknownFormat(file: String, detail: String)
    /// Nothing survived filtering / k-core.
    case emptyResult(file: String, detail: String)
    /// A file could not be opened, read or written.
    case io(file: String, detail: String)
    /// A user too short for the requested split.
    case sequenceTooShort(user: Int, length: Int, split: String)
    /// A prepared dataset directory is inconsistent.
    case badDataset(file: String, line: Int, detail: String)
    /// An option value the data does not allow (known only once the data is read), e.g.
    /// `data subsample --users` above the dataset's users. `detail` says the valid range.
    case badOption(option: String, detail: String)

    public var description: String {
        switch self {
        case let .malformedLine(file, line, text, reason):
            return "\(file):\(line): \(reason): \"\(Self.clip(text))\". "
                + "Fix the line, choose the right --format, or pass --skip-bad-lines to count and skip such lines."
        case let .unknownFormat(file, detail):
            return "\(file): \(detail). Pass --format with one of: "
                + InputFormat.allCases.filter { $0 != .auto }.map(\.rawValue).joined(separator: ", ") + "."
        case let .emptyResult(file, detail):
            return "\(file): \(detail). Lower --min-rating or --kcore, or check that the right file and format were given."
        case let .io(file, detail):
            return "\(file): \(detail)"
        case let .sequenceTooShort(user, length, split):
            return "user \(user) has \(length) interaction(s) but the \(split) split needs at least 3 "
                + "(train + validation + test item); re-run `slmrec data prepare` with --kcore 3 or higher."
        case let .badDataset(file, line, detail):
            return "\(file)\(line > 0 ? ":\(line)" : ""): \(detail). Re-create the directory with `slmrec data prepare`."
        case let .badOption(option, detail):
            return "\(option): \(detail)"
        }
    }

    /// Offending text is quoted, but a 1 MB line would drown the message.
    static func clip(_ s: String) -> String { s.count <= 200 ? s : String(s.prefix(200)) + "…" }
}

extension RecDataError: LocalizedError {
    public var errorDescription: String? { description }
}
