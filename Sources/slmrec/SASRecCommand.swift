import CommandKit

/// `slmrec sasrec` (the classic baseline and the item-embedding pre-training).
let sasrecCommands: [any ParsableCommand.Type] = []
