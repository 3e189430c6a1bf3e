internal import CUSMKernels

/// The process heap.
public enum Heap {
    /// Returns the heap's free pages to the operating system where the C library can (glibc's `malloc_trim`);
    /// true if any were released. Loading a model frees its decode temporaries in an order that leaves tens of MB
    /// of free but resident heap at USM-1B shape; the recognizer calls this once after loading.
    @discardableResult
    public static func releaseFree() -> Bool { usm_release_free_heap() != 0 }
}
