import ArgumentParser

@main
struct USMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usm-bench", abstract: "usm-infer benchmarks (never asserted in unit tests)",
        subcommands: [KernelsCommand.self, AttentionCommand.self, SizeCommand.self, LatencyCommand.self, WERCommand.self, PlotCommand.self, SynthCommand.self])
}
