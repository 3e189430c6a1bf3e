import ArgumentParser
import Foundation
@_exported import USMIO

/// The entry point the command-line tools share: parses the arguments, runs the command and maps every failure to
/// the exit-status contract (`ExitStatus`): usage errors 64, the error's own status for errors that carry one
/// (`ExitStatusProviding`: invalid data 65, cannot open 66, output 74), 70 for anything else. Standard output
/// written through `ToolOutput` is checked: a failed write ends the tool with 74.
public enum ToolMain {
    public static func run<C: ParsableCommand>(_ command: C.Type) -> Never {
        signal(SIGPIPE, SIG_IGN)  // a closed stdout is a write error (74), not a silent death by signal
        var parsed: ParsableCommand
        do {
            parsed = try C.parseAsRoot()
        } catch {
            C.exit(withError: error)  // help, version and usage errors as ArgumentParser reports them (64)
        }
        do {
            try parsed.run()
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch let e as ValidationError {
            C.exit(withError: e)
        } catch let e as CleanExit {
            C.exit(withError: e)
        } catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            C.exit(withError: error)  // `--help` runs a help command of ArgumentParser's that throws its request
        } catch {
            ToolOutput.log("error: \(error)")
            Foundation.exit(exitStatus(of: error).rawValue)
        }
        Foundation.exit(0)
    }
}

/// Result text on standard output and diagnostics on standard error.
public enum ToolOutput {
    /// `print` through an unbuffered, checked write: when standard output cannot take it (a full disk, a closed
    /// pipe) the tool says so on stderr and exits with 74 instead of losing the output.
    public static func print(_ items: [Any], separator: String, terminator: String) {
        let text = items.map { "\($0)" }.joined(separator: separator) + terminator
        if let m = StandardStreams.writeOutput(text) {
            log("error: \(m)")
            Foundation.exit(ExitStatus.outputFailed.rawValue)
        }
    }

    public static func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}
