internal import CUSMKernels

/// The process heap.
public enum Heap {
    /// Returns the heap's free pages to the operating system where the C library can (glibc's `malloc_trim`);
    /// true if any were released. Loading a model frees its decode temporaries in an order that leaves tens of MB
    /// of free but resident heap at USM-1B shape; the recognizer calls this once after loading.
    @discardableResult
    public static func releaseFree() -> Bool { usm_release_free_heap() != 0 }

    /// Makes the C library give every allocation of at least `bytes` pages of its own, returned to the operating
    /// system when freed (glibc's `M_MMAP_THRESHOLD`, which otherwise drifts up to 32 MB, so freed multi-MB
    /// buffers stay resident in the heap). Process-wide; true if set. The recognizer sets 1 MB before loading a
    /// large model: at USM-1B shape that lowers the offline peak by ~10 MB.
    @discardableResult
    public static func mapLargeBlocks(atLeast bytes: Int = 1 << 20) -> Bool { usm_map_large_blocks(Int64(bytes)) != 0 }
}
