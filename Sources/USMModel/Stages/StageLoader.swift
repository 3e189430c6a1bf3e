import Synchronization
import USMFormat
import USMKernels
import USMTensor

/// Reads the tensors of a model's stages from a `TensorSource`: checks each one's shape, prepares matrices for their
/// kernels (quantized matrices keep their codes and run with `activations`; f32 ones run the f32 kernel) and counts
/// kernels and prepared bytes for the model's report.
struct StageLoader {
    let source: any TensorSource
    let activations: ActivationMode
    private(set) var kernels: [String: Int] = [:]
    private(set) var kernelLayouts: [String: String] = [:]
    private(set) var preparedBytes = 0
    /// Names of the tensors read so far.
    private(set) var read: Set<String> = []

    init(source: any TensorSource, activations: ActivationMode) {
        self.source = source
        self.activations = activations
    }

    /// The tensor `name`, which must have `shape`.
    mutating func tensor(_ name: String, shape: [Int]) throws(ModelError) -> PackedTensor {
        read.insert(name)
        let found: PackedTensor?
        do throws(ContainerError) { found = try source.tensor(named: name) } catch { throw .file(error) }
        guard let t = found else { throw .missingTensor(name) }
        guard t.shape == shape else { throw .tensorMismatch("'\(name)' has shape \(t.shape), the config needs \(shape)") }
        return t
    }

    /// The values of `name` (dequantized where packed), counted as prepared bytes.
    mutating func floats(_ name: String, shape: [Int]) throws(ModelError) -> [Float] {
        let v = try tensor(name, shape: shape).dequantized()
        preparedBytes += v.count * 4
        return v
    }

    /// `prefix.weight` `[rows, k]` (with `prefix.bias` `[rows]` when `bias`) prepared for its kernel.
    mutating func linear(_ prefix: String, rows: Int, k: Int, bias: Bool = true) throws(ModelError) -> PreparedWeight {
        let b = bias ? try floats(prefix + ".bias", shape: [rows]) : nil
        preparedBytes -= (b?.count ?? 0) * 4  // counted in the prepared weight
        return try prepare(try tensor(prefix + ".weight", shape: [rows, k]), bias: b, name: prefix + ".weight")
    }

    /// A weight stored with more dimensions (a conv kernel `[rows, ...]`) as the f32 matrix `[rows, k]` of the same
    /// row-major values, with its bias.
    mutating func flattened(_ prefix: String, shape: [Int], bias: Bool = true) throws(ModelError) -> PreparedWeight {
        let rows = shape[0], k = shape.dropFirst().reduce(1, *)
        let b = bias ? try floats(prefix + ".bias", shape: [rows]) : nil
        preparedBytes -= (b?.count ?? 0) * 4
        let values = try tensor(prefix + ".weight", shape: shape).dequantized()
        let matrix: PackedTensor
        do throws(LayoutError) { matrix = try PackedTensor(f32: values, shape: [rows, k]) } catch {
            throw .tensorMismatch("'\(prefix).weight': \(error)")
        }
        return try prepare(matrix, bias: b, name: prefix + ".weight")
    }

    mutating func prepare(_ w: PackedTensor, bias: [Float]?, name: String) throws(ModelError) -> PreparedWeight {
        let p: PreparedWeight
        do { p = try PreparedWeight(w, bias: bias, activations: w.scheme == .f32 ? .float : activations) } catch {
            throw .tensorMismatch("'\(name)': \(error)")
        }
        preparedBytes += p.preparedBytes
        kernels[p.kernelName, default: 0] += 1
        if kernelLayouts[p.kernelName] == nil { kernelLayouts[p.kernelName] = p.layoutDescription }
        if let s = p.singleTokenKernel {
            let key = s.name + " (single tokens)"
            kernels[key, default: 0] += 1
            if kernelLayouts[key] == nil { kernelLayouts[key] = "the layout of \(p.kernelName)" }
        }
        return p
    }
}

extension StageLoader {
    /// Builds units `0 ..< count` (encoder blocks, say) on up to `threads` threads, each thread with a loader of its
    /// own whose counts are merged into this one (see `loadUnits`).
    mutating func units<T>(_ count: Int, threads: Int, _ make: (Int, inout StageLoader) throws(ModelError) -> T) throws(ModelError) -> [T] {
        var loaders = (0..<max(1, min(threads, count))).map { _ in StageLoader(source: source, activations: activations) }
        let out = try loadUnits(count, loaders: &loaders) { u, _, l throws(ModelError) in try make(u, &l) }
        for l in loaders {
            preparedBytes += l.preparedBytes
            read.formUnion(l.read)
            for (k, n) in l.kernels { kernels[k, default: 0] += n }
            for (k, d) in l.kernelLayouts where kernelLayouts[k] == nil { kernelLayouts[k] = d }
        }
        return out
    }
}

/// Builds units `0 ..< count` on `loaders.count` threads (part p uses `loaders[p]`), each unit taken in order by the
/// next free thread, so a model's units load in parallel whatever their sizes. The units are the same whatever the
/// thread count; once one fails the threads stop taking new ones, and the first failure in unit order is thrown.
func loadUnits<L, T>(_ count: Int, loaders: inout [L], _ make: (_ unit: Int, _ part: Int, inout L) throws(ModelError) -> T) throws(ModelError) -> [T] {
    let parts = loaders.count
    var built = [Result<T, ModelError>?](repeating: nil, count: count)
    let next = Atomic<Int>(0), failed = Atomic<Bool>(false)
    loaders.withUnsafeMutableBufferPointer { lp in
        built.withUnsafeMutableBufferPointer { bp in
            parallelFor(parts, threads: parts) { part in
                while !failed.load(ordering: .relaxed) {
                    let u = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard u < count else { return }
                    do throws(ModelError) {
                        bp[u] = .success(try make(u, part, &lp[part]))
                    } catch {
                        bp[u] = .failure(error)
                        failed.store(true, ordering: .relaxed)
                        return
                    }
                }
            }
        }
    }
    // units are taken in order and a thread finishes the unit it took, so every unit before a failed one ran
    var out: [T] = []
    out.reserveCapacity(count)
    for r in built {
        switch r {
        case .success(let v): out.append(v)
        case .failure(let e): throw e
        case nil: preconditionFailure("a load unit was not run")  // threads stop early only after a failure
        }
    }
    return out
}

extension TensorInfo {
    /// `prefix.weight [rows, k]` and (with `bias`) `prefix.bias [rows]`.
    static func linear(_ prefix: String, rows: Int, k: Int, bias: Bool = true) -> [TensorInfo] {
        [TensorInfo(name: prefix + ".weight", shape: [rows, k])] + (bias ? [TensorInfo(name: prefix + ".bias", shape: [rows])] : [])
    }
}

/// Row-major products and row-wise operations on whole arrays, for stages that run an utterance at once.
enum Rows {
    /// `x` `[n, w.k]` times `w` -> `[n, w.rows]` (plus bias), then the epilogue.
    static func product(_ w: PreparedWeight, _ x: [Float], _ n: Int, _ ws: Workspace,
                        epilogue: PreparedWeight.Epilogue = .none) -> [Float] {
        var y = [Float](repeating: 0, count: n * w.rows)
        guard n > 0 else { return y }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in w.apply(xp, n: n, into: yp, workspace: ws, epilogue: epilogue) }
        }
        return y
    }

    /// LayerNorm of each `d`-float row.
    static func layerNorm(_ x: [Float], rows: Int, d: Int, _ p: NormParameters, eps: Float, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * d)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                p.scale.withUnsafeBufferPointer { s in
                    p.bias.withUnsafeBufferPointer { b in
                        Elementwise.layerNorm(xp.baseAddress!, yp.baseAddress!, rows: rows, d: d, scale: s.baseAddress!,
                                              bias: b.baseAddress!, eps: eps, threads: threads)
                    }
                }
            }
        }
        return y
    }

    /// `x += a * o`.
    static func addScaled(_ x: inout [Float], _ o: [Float], _ a: Float, threads: Int) {
        precondition(o.count >= x.count)
        let n = x.count
        guard n > 0 else { return }
        x.withUnsafeMutableBufferPointer { xp in
            o.withUnsafeBufferPointer { op in
                Elementwise.addScaled(xp.baseAddress!, op.baseAddress!, a, xp.baseAddress!, n, threads: threads)
            }
        }
    }

    /// `y = x * sigmoid(x)` in place.
    static func swish(_ x: inout [Float], threads: Int) {
        let n = x.count
        guard n > 0 else { return }
        x.withUnsafeMutableBufferPointer { Elementwise.swish($0.baseAddress!, $0.baseAddress!, n, threads: threads) }
    }
}

/// A LayerNorm's scale and bias.
struct NormParameters: Sendable {
    static func tensors(_ prefix: String, dim: Int) -> [TensorInfo] {
        [TensorInfo(name: prefix + ".scale", shape: [dim]), TensorInfo(name: prefix + ".bias", shape: [dim])]
    }

    var scale: [Float]
    var bias: [Float]

    init(_ loader: inout StageLoader, _ prefix: String, dim: Int) throws(ModelError) {
        scale = try loader.floats(prefix + ".scale", shape: [dim])
        bias = try loader.floats(prefix + ".bias", shape: [dim])
    }
}
