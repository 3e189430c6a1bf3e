#!/usr/bin/env python3
"""Live peer for `usm-bench kernels`: ONNX Runtime's MatMulNBits (4-bit weights in blocks, int8 activations with
accuracy_level 4) on the same shapes. Prints one JSON object per measurement on stdout.

Shape OUTxIN means W[out, in]: y[n, out] = x[n, in] . W^T (ORT's N = out, K = in).
Hot: one weight, repeated. Cold (N=1 only): distinct weight copies totalling --cold-mb, cycled (their sessions'
threads sleep between runs instead of spinning where there are several per session).
"""
import argparse
import json
import sys
import time

import numpy as np

try:
    import onnxruntime as ort
    from onnx import TensorProto, helper
except ImportError as e:  # the caller prints this line and skips the peer
    print(json.dumps({"skip": f"onnxruntime/onnx not importable: {e}"}))
    sys.exit(0)


def model_bytes(out_f, in_f, bits, block, rng):
    k_blocks = (in_f + block - 1) // block
    blob = block * bits // 8
    b = rng.integers(0, 256, size=(out_f, k_blocks, blob), dtype=np.uint8)
    scales = (rng.random(out_f * k_blocks, dtype=np.float32) * 0.01 + 0.001).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft",
                            K=in_f, N=out_f, bits=bits, block_size=block, accuracy_level=4)
    graph = helper.make_graph(
        [node], "mmnb",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", in_f])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", out_f])],
        initializer=[helper.make_tensor("B", TensorProto.UINT8, b.shape, b.tobytes(), raw=True),
                     helper.make_tensor("scales", TensorProto.FLOAT, scales.shape, scales.tobytes(), raw=True)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 9
    weight_bytes = b.nbytes + scales.nbytes
    return m.SerializeToString(), weight_bytes


def session(model, threads, spin=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    if not spin:
        # the cold runs cycle through dozens of sessions, each with its own pool: spinning after a run, their threads
        # would take the cores from the session that runs next (2 threads: 9.9 ms per 6144x1536 GEMV instead of 0.2)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def timed(bindings, sessions, min_time, repeats):
    """Median over `repeats` batches of the mean time per run (seconds); runs cycle through the sessions."""
    for s, b in zip(sessions, bindings):
        s.run_with_iobinding(b)
    best = []
    for _ in range(repeats):
        runs, t0 = 0, time.perf_counter()
        while True:
            i = runs % len(sessions)
            sessions[i].run_with_iobinding(bindings[i])
            runs += 1
            el = time.perf_counter() - t0
            if el >= min_time and runs >= len(sessions):
                break
        best.append(el / runs)
    return sorted(best)[len(best) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="6144x1536,1536x6144,1536x1536,3072x1536")
    ap.add_argument("--n", default="1,16,64,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--blocks", default="64,32")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--cold-mb", type=float, default=256)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    for shape in a.shapes.split(","):
        out_f, in_f = (int(v) for v in shape.lower().split("x"))
        for block in (int(v) for v in a.blocks.split(",")):
            model, wbytes = model_bytes(out_f, in_f, a.bits, block, rng)
            copies = max(1, int(a.cold_mb * 1e6 / wbytes) + 1)
            cold_models = None
            for threads in (int(v) for v in a.threads.split(",")):
                hot = session(model, threads)
                for n in (int(v) for v in a.n.split(",")):
                    x = rng.standard_normal((n, in_f), dtype=np.float32)
                    y = np.empty((n, out_f), dtype=np.float32)

                    def bind(s):
                        b = s.io_binding()
                        b.bind_cpu_input("A", x)
                        b.bind_output("Y", "cpu", 0, np.float32, [n, out_f], y.ctypes.data)
                        return b

                    modes = [("hot", [hot])]
                    if n == 1:
                        if cold_models is None:
                            cold_models = [model_bytes(out_f, in_f, a.bits, block, rng)[0] for _ in range(copies)]
                        modes.append(("cold", [session(m, threads, spin=threads == 1) for m in cold_models]))
                    for mode, sessions in modes:
                        t = timed([bind(s) for s in sessions], sessions, a.min_time, a.repeats)
                        print(json.dumps({
                            "peer": f"ort-matmulnbits-{a.bits}bit-b{block}-acc4", "shape": shape, "n": n,
                            "threads": threads, "mode": mode, "time_us": t * 1e6,
                            "bits_per_weight": wbytes * 8 / (out_f * in_f), "weight_bytes": wbytes,
                            "ort": ort.__version__}), flush=True)
                        del sessions


if __name__ == "__main__":
    main()
