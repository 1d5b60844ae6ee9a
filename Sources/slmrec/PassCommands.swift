import CommandKit

/// `slmrec passes`, `slmrec apply`, `slmrec run` (the plugin host's commands).
let passCommands: [any ParsableCommand.Type] = []
