import MarketData
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Appends records to the day's file of a recording, rotating to a new file when the UTC day of
/// the records changes.
///
/// Blocking: it is driven by one dedicated thread (``TickRecordingSink``), never an event loop.
/// Records are encoded into a buffer that goes to the kernel when it fills and on ``flush(sync:)``;
/// a process killed between flushes loses only what was buffered, and a line cut short by a
/// crash is closed with a newline before the next append, so it spoils no later record.
public final class TickRecordWriter {
    /// What a recording wrote.
    public struct Summary: Sendable, Equatable {
        public var records: Int = 0
        public var bytes: Int = 0
        /// Every file written to, oldest first.
        public var files: [String] = []

        public init() {}
    }

    private static let writeThreshold = 64 * 1024

    public let name: RecordingFileName
    public private(set) var summary = Summary()
    private var buffer = ByteBufferAllocator().buffer(capacity: 80 * 1024)
    private var descriptor: Int32 = -1
    private var day: RecordingDay?

    /// Opens the file for the day of `now` (epoch nanoseconds), so a bad path fails at once.
    public init(output: String, now: Int64) throws(TickRecordingError) {
        self.name = RecordingFileName(output: output)
        try self.open(RecordingDay(epochNanoseconds: now))
    }

    deinit {
        if self.descriptor >= 0 { Glibc.close(self.descriptor) }
    }

    /// The file being written.
    public var currentPath: String? { self.summary.files.last }

    /// Buffers one record; writes the buffer out when it is large or the record starts a new day.
    public func append(_ record: TickRecord) throws(TickRecordingError) {
        let recordDay = RecordingDay(epochNanoseconds: record.receivedAt)
        if recordDay != self.day {
            try self.writeBuffer()
            if self.descriptor >= 0 {
                Glibc.close(self.descriptor)
                self.descriptor = -1
            }
            try self.open(recordDay)
        }
        let before = self.buffer.writerIndex
        TickRecordFormat.write(record, into: &self.buffer)
        self.summary.records += 1
        self.summary.bytes += self.buffer.writerIndex - before
        if self.buffer.readableBytes >= Self.writeThreshold { try self.writeBuffer() }
    }

    /// Hands buffered records to the kernel (they then survive the process); with `sync`, also to
    /// the disk (they then survive the machine).
    public func flush(sync: Bool) throws(TickRecordingError) {
        try self.writeBuffer()
        if sync, self.descriptor >= 0 { _ = fdatasync(self.descriptor) }
    }

    /// Flushes, syncs and closes the file.
    public func close() throws(TickRecordingError) {
        defer {
            if self.descriptor >= 0 { Glibc.close(self.descriptor) }
            self.descriptor = -1
        }
        try self.flush(sync: true)
    }

    private func open(_ day: RecordingDay) throws(TickRecordingError) {
        let path = self.name.path(forDay: day)
        // Read-write so that `endsWithPartialLine` can read the last byte.
        let descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .cannotOpen(path, reason: String(cString: strerror(errno))) }
        self.descriptor = descriptor
        self.day = day
        if !self.summary.files.contains(path) { self.summary.files.append(path) }
        if Self.endsWithPartialLine(descriptor) {
            self.buffer.writeInteger(UInt8(ascii: "\n"))
        }
    }

    /// Whether the file's last byte is not a newline: a line a crash cut short.
    private static func endsWithPartialLine(_ descriptor: Int32) -> Bool {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size > 0 else { return false }
        var last: UInt8 = 0
        guard pread(descriptor, &last, 1, status.st_size - 1) == 1 else { return false }
        return last != UInt8(ascii: "\n")
    }

    private func writeBuffer() throws(TickRecordingError) {
        while self.buffer.readableBytes > 0 {
            let written = self.buffer.withUnsafeReadableBytes { bytes in
                Glibc.write(self.descriptor, bytes.baseAddress, bytes.count)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw .cannotWrite(self.currentPath ?? self.name.stem, reason: String(cString: strerror(errno)))
            }
            self.buffer.moveReaderIndex(forwardBy: written)
        }
        self.buffer.clear()
    }
}
