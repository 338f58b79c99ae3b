import MarketData
import NIOCore

/// What a feed should stream for one instrument, as the hub last asked for it.
package struct FeedSubscription: Sendable, Hashable {
    package var instrument: Instrument
    package var mode: SubscriptionMode
    /// The depth levels asked for (only meaningful for ``SubscriptionMode/depth``).
    package var depth: Int

    package init(instrument: Instrument, mode: SubscriptionMode, depth: Int) {
        self.instrument = instrument
        self.mode = mode
        self.depth = depth
    }
}

/// What a broker message does to its instruments.
package enum SubscriptionChange: Sendable, Hashable {
    /// Stream at this mode (new, upgraded or downgraded: brokers keep one mode per instrument).
    case subscribe(mode: SubscriptionMode, depth: Int)
    /// Stop streaming.
    case unsubscribe
}

/// Instruments that share one change and fit in one broker message; a codec turns each into one
/// (or, for brokers that need a follow-up such as Kite's `mode`, a few) wire messages.
package struct SubscriptionBatch: Sendable, Equatable {
    package var change: SubscriptionChange
    package var instruments: [Instrument]

    package init(change: SubscriptionChange, instruments: [Instrument]) {
        self.change = change
        self.instruments = instruments
    }

    /// Groups changes into batches: unsubscribes first (they free broker-side capacity), then
    /// subscribes by mode and depth in order of first appearance; each batch holds at most
    /// `maximumInstrumentsPerMessage` instruments, in the order given.
    package static func grouping(
        _ changes: some Sequence<(instrument: Instrument, change: SubscriptionChange)>,
        maximumInstrumentsPerMessage: Int
    ) -> [SubscriptionBatch] {
        var order: [SubscriptionChange] = []
        var groups: [SubscriptionChange: [Instrument]] = [:]
        for (instrument, change) in changes {
            if groups[change] == nil {
                if change == .unsubscribe { order.insert(change, at: 0) } else { order.append(change) }
            }
            groups[change, default: []].append(instrument)
        }
        var batches: [SubscriptionBatch] = []
        for change in order {
            let instruments = groups[change] ?? []
            var start = instruments.startIndex
            while start < instruments.endIndex {
                let end = min(start + maximumInstrumentsPerMessage, instruments.endIndex)
                batches.append(SubscriptionBatch(change: change, instruments: Array(instruments[start..<end])))
                start = end
            }
        }
        return batches
    }
}

/// Collects subscription changes for a short window so that a burst of hub requests (a client
/// subscribing to 500 symbols arrives as many calls) goes out as a few broker messages, the way
/// OpenAlgo's adapters do (spec §0.4).
///
/// The window starts with the first pending change and is not re-armed by later ones, so no change
/// waits longer than the window. A later change for an instrument replaces an earlier pending one:
/// only where the hub wants the instrument to end up is sent. Once enough changes are pending to
/// fill a message, the batcher asks to be flushed at once.
///
/// Pure and event-loop agnostic: the caller owns the timer.
package struct SubscriptionBatcher: Sendable {
    package struct Configuration: Sendable, Equatable {
        /// How long changes are collected before they are sent.
        package var window: TimeAmount
        /// The most instruments one broker message may carry (Kite 200, Dhan 100); `Int.max` when
        /// the broker takes any number.
        package var maximumInstrumentsPerMessage: Int

        package init(window: TimeAmount = .milliseconds(500), maximumInstrumentsPerMessage: Int = .max) {
            precondition(window >= .zero, "the window cannot be negative")
            precondition(maximumInstrumentsPerMessage >= 1, "a message carries at least one instrument")
            self.window = window
            self.maximumInstrumentsPerMessage = maximumInstrumentsPerMessage
        }
    }

    /// What the caller does after adding changes.
    package enum Action: Sendable, Equatable {
        /// Nothing: a flush is already scheduled.
        case none
        /// Schedule ``flush()`` at this deadline (the first change of a new window).
        case scheduleFlush(at: NIODeadline)
        /// Call ``flush()`` now (and cancel the scheduled one): a full message is waiting.
        case flushNow
    }

    package let configuration: Configuration
    private var pending: [Instrument: (change: SubscriptionChange, sequence: Int)] = [:]
    private var nextSequence = 0

    package init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Whether changes are waiting for a flush.
    package var hasPendingChanges: Bool { !self.pending.isEmpty }

    /// Records `change` for `instruments`.
    package mutating func add(_ change: SubscriptionChange, for instruments: [Instrument], now: NIODeadline) -> Action {
        guard !instruments.isEmpty else { return .none }
        let startsWindow = self.pending.isEmpty
        for instrument in instruments {
            self.pending[instrument] = (change, self.nextSequence)
            self.nextSequence += 1
        }
        if self.pending.count >= self.configuration.maximumInstrumentsPerMessage { return .flushNow }
        return startsWindow ? .scheduleFlush(at: now + self.configuration.window) : .none
    }

    /// The pending changes as broker-sized batches (see ``SubscriptionBatch/grouping(_:maximumInstrumentsPerMessage:)``);
    /// the batcher is empty afterwards.
    package mutating func flush() -> [SubscriptionBatch] {
        let changes = self.pending.sorted { $0.value.sequence < $1.value.sequence }.map { (instrument: $0.key, change: $0.value.change) }
        self.pending.removeAll(keepingCapacity: true)
        return SubscriptionBatch.grouping(changes, maximumInstrumentsPerMessage: self.configuration.maximumInstrumentsPerMessage)
    }

    /// Drops pending changes, as when the connection is lost: the replay after reconnecting
    /// sends the whole subscription set anyway.
    package mutating func discardPendingChanges() {
        self.pending.removeAll()
    }
}
