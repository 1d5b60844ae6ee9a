import CommandKit

/// `slmrec data …` and `slmrec eval`.
let dataCommands: [any ParsableCommand.Type] = []
