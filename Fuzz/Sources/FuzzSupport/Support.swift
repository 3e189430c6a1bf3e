import Foundation

/// Helpers shared by the fuzz targets.
public enum FuzzInput {
    /// The input as an array.
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Writes `bytes` to a per-process file in /dev/shm (or the temporary directory) and returns its path: the
    /// readers under test take paths.
    public static func file(_ bytes: [UInt8], suffix: String) -> String {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(dir)/usm-fuzz-\(getpid())\(suffix)"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }
}
