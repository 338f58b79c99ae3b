import MarketData

/// Spreads instruments over a pool of broker connections, each with a symbol limit, the way
/// OpenAlgo's connection pool does (spec §0.2: by default up to 3 connections × 1000 symbols).
///
/// An instrument counts once on its connection whatever its mode. New instruments go to the
/// lowest-numbered connection with room, so connections are opened only when the earlier ones
/// are full. Pure: ``FeedConnectionPoolStateMachine`` decides from it when connections open
/// and close.
package struct ConnectionSlotAllocator: Sendable {
    /// Where an instrument goes.
    package enum Assignment: Sendable, Equatable {
        /// On `slot`; `opensConnection` when it is the slot's first instrument.
        case assigned(slot: Int, opensConnection: Bool)
        /// Already on `slot` (a mode change stays on the same connection).
        case alreadyAssigned(slot: Int)
        /// Every connection is full; ``capacityMessage()`` is the per-symbol refusal text.
        case poolFull
    }

    /// What releasing an instrument freed.
    package struct Release: Sendable, Equatable {
        package var slot: Int
        /// The slot has no instruments left.
        package var closesConnection: Bool

        package init(slot: Int, closesConnection: Bool) {
            self.slot = slot
            self.closesConnection = closesConnection
        }
    }

    package let maximumConnections: Int
    package let maximumInstrumentsPerConnection: Int
    private var slotOfInstrument: [Instrument: Int] = [:]
    private var counts: [Int]

    package init(maximumConnections: Int = 3, maximumInstrumentsPerConnection: Int = 1000) {
        precondition(
            maximumConnections >= 1 && maximumInstrumentsPerConnection >= 1,
            "a pool has at least one connection with room for one instrument"
        )
        self.maximumConnections = maximumConnections
        self.maximumInstrumentsPerConnection = maximumInstrumentsPerConnection
        self.counts = Array(repeating: 0, count: maximumConnections)
    }

    /// Instruments on all connections.
    package var instrumentCount: Int { self.slotOfInstrument.count }

    /// Instruments on `slot`.
    package func instrumentCount(onSlot slot: Int) -> Int { self.counts[slot] }

    /// The slot `instrument` is on, if any.
    package func slot(of instrument: Instrument) -> Int? { self.slotOfInstrument[instrument] }

    /// Places `instrument` on a connection.
    package mutating func assign(_ instrument: Instrument) -> Assignment {
        if let slot = self.slotOfInstrument[instrument] { return .alreadyAssigned(slot: slot) }
        guard let slot = self.counts.firstIndex(where: { $0 < self.maximumInstrumentsPerConnection }) else { return .poolFull }
        self.slotOfInstrument[instrument] = slot
        self.counts[slot] += 1
        return .assigned(slot: slot, opensConnection: self.counts[slot] == 1)
    }

    /// Takes `instrument` off its connection; `nil` when it was on none.
    package mutating func release(_ instrument: Instrument) -> Release? {
        guard let slot = self.slotOfInstrument.removeValue(forKey: instrument) else { return nil }
        self.counts[slot] -= 1
        return Release(slot: slot, closesConnection: self.counts[slot] == 0)
    }

    /// The reference pool's refusal text (spec openalgo-ws-protocol §6.9), with its `×`.
    package func capacityMessage() -> String {
        let total = self.maximumConnections * self.maximumInstrumentsPerConnection
        return "Maximum capacity reached: \(self.maximumConnections) connections \u{00D7} \(self.maximumInstrumentsPerConnection) symbols = "
            + "\(total) symbols. Currently subscribed to \(self.instrumentCount) symbols."
    }
}
