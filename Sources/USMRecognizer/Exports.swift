import USMAudio
import USMKernels
import USMModel

// The types a caller of the library names, re-exported so that `import USMRecognizer` is the one import a
// command-line tool or a service needs.

/// How packed layers take their activations (`RecognizerOptions.activations`).
public typealias ActivationMode = USMKernels.ActivationMode
/// How a stream keeps its encoder layers' context rows (`RecognizerOptions.contextPrecision`).
public typealias ContextPrecision = USMModel.ContextPrecision
/// How the model keeps its relative-position tables (`RecognizerOptions.positionPrecision`).
public typealias PositionPrecision = USMModel.PositionPrecision
/// Greedy or beam search (`RecognizerOptions.search`).
public typealias SearchMethod = USMModel.SearchMethod
/// Which channel(s) of a file make the mono signal.
public typealias ChannelSelection = USMAudio.ChannelSelection
/// Bounds on what an audio file's header may make the reader do (`RecognizerLimits.audio`).
public typealias AudioLimits = USMAudio.AudioLimits
/// The process heap (`Heap.releaseFree()`: give its free pages back to the operating system).
public typealias Heap = USMKernels.Heap
