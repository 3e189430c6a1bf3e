import ArgumentParser
import USMCommandLine

@main
struct USMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usm-bench", abstract: "usm-infer benchmarks (never asserted in unit tests)",
        discussion: "Exit codes: 0 success, 64 bad arguments, 65 invalid model or audio data, 66 input missing or unreadable, 70 internal error, 74 output cannot be written.",
        subcommands: [KernelsCommand.self, AttentionCommand.self, SizeCommand.self, LatencyCommand.self, WERCommand.self, AgreementCommand.self, PlotCommand.self, SynthCommand.self])

    static func main() { ToolMain.run(Self.self) }
}
