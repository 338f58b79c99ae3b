import LocalIPC
import LocalIPCServer
import Logging
import MarketData
import NIOConcurrencyHelpers
import NIOCore
import StreamingHub
import TickRecording
import WireJSON

/// The agent's recordings: starting one (`record_start`, `[record]`), stopping it, and listing
/// them for `status`.
///
/// Each recording has a ``TickRecorder`` in the hub and a ``TickRecordingSink`` with its own
/// writer thread; this type only wires them up and keeps the list.
final class RecordingController: Sendable {
    private struct Entry {
        var recording: RecordingDescription
        var recorder: NIOLoopBound<TickRecorder>
        var sink: TickRecordingSink
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var nextNumber = 0
        var acceptsNew = true
    }

    private let hub: NIOLoopBound<StreamingHub>
    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    init(hub: NIOLoopBound<StreamingHub>, logger: Logger) {
        self.hub = hub
        self.logger = logger
    }

    /// Opens the day's file, then subscribes the instruments for the recording.
    ///
    /// - Returns: the recording's id and file, and one subscription outcome per instrument.
    func start(_ request: RecordingRequest) async -> Result<JSONValue, RPCError> {
        let writer: TickRecordWriter
        do {
            writer = try TickRecordWriter(output: request.output, now: WallClock.epochNanoseconds())
        } catch {
            return .failure(.invalidParams(field: "output", "Cannot record to \(request.output): \(error)"))
        }
        let id: String? = self.state.withLockedValue { state in
            guard state.acceptsNew else { return nil }
            state.nextNumber += 1
            return "rec-\(state.nextNumber)"
        }
        guard let id else { return .failure(.notConnected("The agent is shutting down.")) }
        let recording = RecordingDescription(
            id: id,
            instruments: request.instruments,
            mode: request.mode,
            output: request.output,
            startedAt: WallClock.epochMilliseconds()
        )
        let sink = TickRecordingSink(writer: writer)
        let hub = self.hub
        let outcomes = await withCheckedContinuation { (continuation: CheckedContinuation<[SubscribeOutcome], Never>) in
            hub.eventLoop.execute {
                let recorder = TickRecorder(subscriberID: hub.value.makeSubscriberID(), recording: recording, sink: sink)
                let entry = Entry(recording: recording, recorder: NIOLoopBound(recorder, eventLoop: hub.eventLoop), sink: sink)
                self.state.withLockedValue { $0.entries[id] = entry }
                hub.value.register(recorder)
                hub.value.addTap(recorder, for: request.instruments)
                hub.value.subscribe(recorder, to: request.instruments, mode: request.mode, depth: request.depth) { outcomes in
                    continuation.resume(returning: outcomes)
                }
            }
        }
        self.logger.notice(
            "recording started",
            metadata: ["id": "\(id)", "file": "\(sink.progress.files.last ?? request.output)", "instruments": "\(request.instruments.count)"]
        )
        let subscriptions = zip(request.instruments, outcomes).map { instrument, outcome -> JSONValue in
            var object: JSONObject = ["symbol": .string(instrument.symbol), "exchange": .string(instrument.exchange)]
            switch outcome {
            case .subscribed: object["status"] = "success"
            case .refused(let message):
                object["status"] = "error"
                object["message"] = .string(message)
            }
            return .object(object)
        }
        return .success(
            .object([
                "id": .string(id),
                "file": sink.progress.files.last.map { .string($0) } ?? .null,
                "mode": .string(request.mode.label),
                "subscriptions": .array(subscriptions),
            ])
        )
    }

    /// Releases the recording's instruments, writes what is queued and closes its file.
    func stop(id: String) async -> Result<JSONValue, RPCError> {
        guard let entry = self.state.withLockedValue({ $0.entries.removeValue(forKey: id) }) else {
            return .failure(.invalidParams(field: "id", "No recording '\(id)'; `oactl status` lists them."))
        }
        let hub = self.hub
        let recorder = entry.recorder
        try? await hub.eventLoop.submit {
            hub.value.removeTap(recorder.value)
            hub.value.remove(recorder.value)
        }.get()
        let progress = await entry.sink.stop()
        self.logger.notice("recording stopped", metadata: ["id": "\(id)", "records": "\(progress.records)"])
        return .success(Self.json(entry.recording, progress))
    }

    /// Stops every recording and refuses new ones (the agent is stopping).
    func stopAll() async {
        let ids = self.state.withLockedValue { state in
            state.acceptsNew = false
            return Array(state.entries.keys)
        }
        for id in ids { _ = await self.stop(id: id) }
    }

    /// The running recordings, oldest first.
    func list() -> [JSONValue] {
        let entries = self.state.withLockedValue { Array($0.entries.values) }
        return entries.sorted { $0.recording.startedAt < $1.recording.startedAt || $0.recording.id < $1.recording.id }
            .map { Self.json($0.recording, $0.sink.progress) }
    }

    private static func json(_ recording: RecordingDescription, _ progress: TickRecordingSink.Progress) -> JSONValue {
        var object: JSONObject = [
            "id": .string(recording.id),
            "mode": .string(recording.mode.label),
            "symbols": .array(recording.instruments.map { .object(["symbol": .string($0.symbol), "exchange": .string($0.exchange)]) }),
            "output": .string(recording.output),
            "file": progress.files.last.map { .string($0) } ?? .null,
            "files": .array(progress.files.map { .string($0) }),
            "records": .int(progress.records),
            "bytes": .int(progress.bytes),
            "started_at": .int(recording.startedAt),
        ]
        if let failure = progress.failure { object["error"] = .string(failure) }
        return .object(object)
    }
}
