import MarketData
import NIOCore
import StreamingHub
import TickRecording

/// One recording inside the hub: a subscriber that holds its instruments (so the feed streams
/// them) without taking frames, and a tap that hands every tick of them to the writer thread.
///
/// Confined to the hub's event loop, where the hub calls it directly.
final class TickRecorder: MarketDataSubscriber, TickTap {
    let subscriberID: SubscriberID
    let recording: RecordingDescription
    let sink: TickRecordingSink

    init(subscriberID: SubscriberID, recording: RecordingDescription, sink: TickRecordingSink) {
        self.subscriberID = subscriberID
        self.recording = recording
        self.sink = sink
    }

    var takesFrames: Bool { false }

    func enqueue(_ frame: ByteBuffer, instrument: Instrument, mode: SubscriptionMode) -> Bool { false }

    func flushEnqueued() {}

    func describe() -> SubscriberDescription {
        SubscriberDescription(
            kind: .recorder,
            peer: self.recording.output,
            connectedAt: self.recording.startedAt,
            name: self.recording.id,
            queuedBytes: 0,
            droppedFrames: 0
        )
    }

    func tapped(_ tick: Tick, receivedAt: Int64) {
        self.sink.append(tick, receivedAt: receivedAt)
    }
}

@available(*, unavailable)
extension TickRecorder: Sendable {}

/// What was asked of a recording, as `status` lists it.
struct RecordingDescription: Sendable {
    /// `rec-1`, `rec-2`, ...
    var id: String
    var instruments: [Instrument]
    var mode: SubscriptionMode
    var output: String
    /// Epoch milliseconds.
    var startedAt: Int64
}
