import USMCommandLine

/// Result text goes to standard output through a checked write (`ToolOutput`): a failed write exits with 74.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    ToolOutput.print(items, separator: separator, terminator: terminator)
}
