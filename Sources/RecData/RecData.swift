// RecData: turns raw interaction logs into prepared dataset directories and reads them back.
//
// Files:
//   Errors.swift          typed errors that name the file, line, offending text and the fix
//   LineReader.swift      streaming byte-level line reader (plain or gzip via zlib)
//   ByteParsing.swift     number parsing and field splitting on raw bytes
//   KeyInterner.swift     byte-string → Int32 hash map (no per-line String allocation)
//   Formats.swift         InputFormat, auto-detection and the per-format record parsers
//   Prepare.swift         DataPrepare.run: filter, dedupe, k-core, sort, re-index, write
//   PreparedDataset.swift loading a prepared directory, splits and examples
//   Batching.swift        length-grouped batches
