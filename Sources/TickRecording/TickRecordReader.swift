import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads the records of a recording (one file or a day-rotated set) in order, a chunk at a time,
/// so a day of Depth ticks replays without being loaded whole.
///
/// A file that ends without a newline was cut short by a crash: its last, partial line is skipped
/// and counted in ``partialLines``; a complete line that is not a record is skipped and counted in
/// ``skippedLines``. Everything else is returned, so a recording killed mid-write is readable up to
/// its last complete record. Blocking; use it on a dedicated thread.
public final class TickRecordReader {
    private static let chunkSize = 1 << 20

    /// The files, in playing order.
    public let paths: [String]
    /// Complete lines that were not tick records.
    public private(set) var skippedLines = 0
    /// Files whose last line was cut short.
    public private(set) var partialLines = 0
    private var fileIndex = 0
    private var descriptor: Int32 = -1
    private var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
    private var reachedEndOfFile = false

    public init(paths: [String]) {
        self.paths = paths
    }

    /// A reader for `path`, or for its rotated files (`name-YYYY-MM-DD.ext`) when `path` itself does not exist.
    public convenience init(recording path: String) throws(TickRecordingError) {
        self.init(paths: try RecordingFiles.resolve(path))
    }

    deinit {
        if self.descriptor >= 0 { Glibc.close(self.descriptor) }
    }

    /// The next record, or `nil` after the last one.
    public func next() throws(TickRecordingError) -> TickRecord? {
        while true {
            if let line = try self.nextLine() {
                do {
                    return try TickRecordFormat.read(line)
                } catch {
                    self.skippedLines += 1
                    continue
                }
            }
            return nil
        }
    }

    /// Starts again from the first record of the first file (for `--loop`).
    public func rewind() {
        if self.descriptor >= 0 { Glibc.close(self.descriptor) }
        self.descriptor = -1
        self.fileIndex = 0
        self.buffer.clear()
        self.reachedEndOfFile = false
        self.skippedLines = 0
        self.partialLines = 0
    }

    /// Every record of a recording, for tools and tests.
    public static func readAll(_ path: String) throws(TickRecordingError) -> [TickRecord] {
        let reader = try TickRecordReader(recording: path)
        var records: [TickRecord] = []
        while let record = try reader.next() { records.append(record) }
        return records
    }

    /// The number of complete lines in `paths`, counted without decoding them (for "record N of M").
    public static func countLines(_ paths: [String]) throws(TickRecordingError) -> Int {
        var count = 0
        var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
        for path in paths {
            let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .cannotOpen(path, reason: String(cString: strerror(errno))) }
            defer { Glibc.close(descriptor) }
            while true {
                let got = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if got < 0 {
                    if errno == EINTR { continue }
                    throw .cannotRead(path, reason: String(cString: strerror(errno)))
                }
                if got == 0 { break }
                for index in 0..<got where chunk[index] == UInt8(ascii: "\n") { count += 1 }
            }
        }
        return count
    }

    /// The next non-empty complete line of the current file, moving on to the next file at the end.
    private func nextLine() throws(TickRecordingError) -> ByteBuffer? {
        while true {
            if let newline = self.buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - self.buffer.readerIndex
                let line = self.buffer.readSlice(length: length)!
                self.buffer.moveReaderIndex(forwardBy: 1)
                if length == 0 { continue }
                return line
            }
            if self.descriptor >= 0, !self.reachedEndOfFile {
                try self.fill()
                continue
            }
            if self.descriptor >= 0 {
                if self.buffer.readableBytes > 0 { self.partialLines += 1 }
                Glibc.close(self.descriptor)
                self.descriptor = -1
                self.fileIndex += 1
            }
            guard self.fileIndex < self.paths.count else { return nil }
            try self.openCurrent()
        }
    }

    private func openCurrent() throws(TickRecordingError) {
        let path = self.paths[self.fileIndex]
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .cannotOpen(path, reason: String(cString: strerror(errno))) }
        self.descriptor = descriptor
        self.reachedEndOfFile = false
        self.buffer.clear()
    }

    private func fill() throws(TickRecordingError) {
        self.buffer.discardReadBytes()
        self.buffer.reserveCapacity(minimumWritableBytes: Self.chunkSize)
        while true {
            let got = self.buffer.withUnsafeMutableWritableBytes { Glibc.read(self.descriptor, $0.baseAddress, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .cannotRead(self.paths[self.fileIndex], reason: String(cString: strerror(errno)))
            }
            if got == 0 {
                self.reachedEndOfFile = true
            } else {
                self.buffer.moveWriterIndex(forwardBy: got)
            }
            return
        }
    }
}

/// Finding the files of a recording.
public enum RecordingFiles {
    /// `path` when it is a file; otherwise its rotated files (`name-YYYY-MM-DD.ext` for
    /// `name.ext`), oldest first; several paths may be given separated by commas.
    public static func resolve(_ path: String) throws(TickRecordingError) -> [String] {
        var files: [String] = []
        for part in path.split(separator: ",") {
            files += try Self.resolveOne(String(part))
        }
        guard !files.isEmpty else { throw .noFiles(path) }
        return files
    }

    private static func resolveOne(_ path: String) throws(TickRecordingError) -> [String] {
        var status = stat()
        if stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG { return [path] }
        let name = RecordingFileName(output: path)
        let pattern = "\(Self.escaped(name.stem))-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]\(Self.escaped(name.pathExtension))"
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, 0, nil, &matches) == 0 else { throw .noFiles(path) }
        var found: [String] = []
        for index in 0..<Int(matches.gl_pathc) {
            if let entry = matches.gl_pathv[index] { found.append(String(cString: entry)) }
        }
        return found.sorted()
    }

    private static func escaped(_ text: String) -> String {
        var result = ""
        for character in text {
            if "*?[]\\".contains(character) { result.append("\\") }
            result.append(character)
        }
        return result
    }
}
