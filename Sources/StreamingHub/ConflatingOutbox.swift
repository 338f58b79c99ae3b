import MarketData
import NIOCore
import OrderedCollections

/// The market data a client has not been able to take yet, kept as the latest frame per
/// (instrument, mode), within a byte budget.
///
/// While a client's socket is not writable, a newer frame for the same instrument and mode replaces
/// the older one (the older price is stale anyway), so a slow reader costs at most one frame per
/// subscription. A client that exceeds the budget even so is beyond help and is closed by its owner.
public struct ConflatingOutbox {
    public struct Key: Hashable, Sendable {
        public var instrument: Instrument
        public var mode: SubscriptionMode

        public init(instrument: Instrument, mode: SubscriptionMode) {
            self.instrument = instrument
            self.mode = mode
        }
    }

    public enum HoldResult: Sendable, Equatable {
        case held
        /// The frame replaced an older one for the same key.
        case conflated
        /// Holding it would exceed the budget; the frame was not kept.
        case overBudget
    }

    public let byteBudget: Int
    private var frames: OrderedDictionary<Key, ByteBuffer> = [:]
    public private(set) var pendingBytes = 0
    /// Frames replaced by newer ones since the outbox was created.
    public private(set) var conflatedCount = 0

    public init(byteBudget: Int) {
        self.byteBudget = byteBudget
    }

    public var isEmpty: Bool { self.frames.isEmpty }

    /// Keeps `payload` as the latest frame for `key`.
    public mutating func hold(_ payload: ByteBuffer, for key: Key) -> HoldResult {
        let index = self.frames.index(forKey: key)
        let previous = index.map { self.frames.values[$0].readableBytes } ?? 0
        let newTotal = self.pendingBytes - previous + payload.readableBytes
        guard newTotal <= self.byteBudget else { return .overBudget }
        self.pendingBytes = newTotal
        guard let index else {
            self.frames[key] = payload
            return .held
        }
        // Replacing in place keeps the key's original position, so older instruments drain first.
        self.frames.values[index] = payload
        self.conflatedCount += 1
        return .conflated
    }

    /// Removes and returns the oldest held frame.
    public mutating func popFirst() -> ByteBuffer? {
        guard let first = self.frames.elements.first else { return nil }
        self.frames.removeFirst()
        self.pendingBytes -= first.value.readableBytes
        return first.value
    }
}
