import MarketData

/// Who holds which instrument at which modes, and at Depth how many levels: the confirmed half
/// of the hub's desired state (requests still waiting for the feed are the hub's other half).
///
/// Lookup for a tick is one hash of the instrument, then a walk over a contiguous array of
/// members, each with a bit mask of its modes. A member receives one delivery per mode it holds
/// at or below the tick's, tagged with that mode: the official SDK routes callbacks by a frame's
/// `mode`, so a client holding LTP, Quote and Depth on one symbol needs all three (as OpenAlgo's
/// adapters publish one topic per subscribed mode).
public struct SubscriptionIndex<Member: Hashable> {
    struct Entry {
        var members: [Member] = []
        var masks: [UInt8] = []
        var positions: [Member: Int] = [:]
        /// Members per mode (index 0 is LTP).
        var counts: (Int, Int, Int) = (0, 0, 0)
        /// The levels each Depth holder asked for.
        var depths: [Member: Int] = [:]

        var highestMode: SubscriptionMode? {
            if self.counts.2 > 0 { return .depth }
            if self.counts.1 > 0 { return .quote }
            if self.counts.0 > 0 { return .ltp }
            return nil
        }

        mutating func adjust(_ mode: SubscriptionMode, by delta: Int) {
            switch mode {
            case .ltp: self.counts.0 += delta
            case .quote: self.counts.1 += delta
            case .depth: self.counts.2 += delta
            }
        }
    }

    private var entries: [Instrument: Entry] = [:]

    public init() {}

    /// Instruments with at least one holder.
    public var instrumentCount: Int { self.entries.count }

    /// What the holders of `instrument` need from the feed: their highest mode and, at Depth, the
    /// most levels any of them asked for.
    public func heldTarget(_ instrument: Instrument) -> FeedTarget? {
        guard let entry = self.entries[instrument], let mode = entry.highestMode else { return nil }
        return FeedTarget(mode: mode, depth: mode == .depth ? entry.depths.values.max() ?? 0 : 0)
    }

    /// Whether anyone holds `instrument`.
    public func holds(_ instrument: Instrument) -> Bool {
        self.entries[instrument] != nil
    }

    /// Adds `member` at `mode` (with `depth` levels at Depth). Holding a mode twice is idempotent,
    /// as in the reference; holding Depth again with other levels replaces them.
    public mutating func add(_ member: Member, _ instrument: Instrument, _ mode: SubscriptionMode, depth: Int) {
        var entry = self.entries[instrument] ?? Entry()
        if let position = entry.positions[member] {
            if entry.masks[position] & mode.bit == 0 {
                entry.masks[position] |= mode.bit
                entry.adjust(mode, by: 1)
            }
        } else {
            entry.positions[member] = entry.members.count
            entry.members.append(member)
            entry.masks.append(mode.bit)
            entry.adjust(mode, by: 1)
        }
        if mode == .depth { entry.depths[member] = depth }
        self.entries[instrument] = entry
    }

    /// Removes `member`'s `mode` on `instrument`; returns whether it held it.
    @discardableResult
    public mutating func remove(_ member: Member, _ instrument: Instrument, _ mode: SubscriptionMode) -> Bool {
        guard var entry = self.entries[instrument], let position = entry.positions[member],
            entry.masks[position] & mode.bit != 0
        else { return false }
        entry.masks[position] &= ~mode.bit
        entry.adjust(mode, by: -1)
        if mode == .depth { entry.depths[member] = nil }
        if entry.masks[position] == 0 {
            entry.positions[member] = nil
            let last = entry.members.count - 1
            if position != last {
                entry.members[position] = entry.members[last]
                entry.masks[position] = entry.masks[last]
                entry.positions[entry.members[position]] = position
            }
            entry.members.removeLast()
            entry.masks.removeLast()
        }
        self.entries[instrument] = entry.members.isEmpty ? nil : entry
        return true
    }

    /// Every instrument with the holders' target and the number of holders per mode, for status
    /// listings.
    public func summary() -> [InstrumentSubscriptionSummary] {
        self.entries.compactMap { instrument, entry in
            guard let target = self.heldTarget(instrument) else { return nil }
            return InstrumentSubscriptionSummary(
                instrument: instrument,
                brokerMode: target.mode,
                levels: target.mode == .depth ? target.depth : nil,
                ltp: entry.counts.0,
                quote: entry.counts.1,
                depth: entry.counts.2
            )
        }
    }

    /// Calls `body` once per mode each member holds at or below `tickMode`, with that mode.
    public func forEachRecipient(
        of instrument: Instrument,
        tickMode: SubscriptionMode,
        _ body: (Member, SubscriptionMode) throws -> Void
    ) rethrows {
        guard let entry = self.entries[instrument] else { return }
        let allowed: UInt8 = (1 << tickMode.rawValue) - 1
        for position in entry.members.indices {
            var mask = entry.masks[position] & allowed
            while mask != 0 {
                let bit = mask & (~mask &+ 1)
                mask &= ~bit
                try body(entry.members[position], SubscriptionMode(rawValue: UInt8(bit.trailingZeroBitCount + 1))!)
            }
        }
    }
}

/// One instrument of the index as status listings show it.
public struct InstrumentSubscriptionSummary: Sendable, Equatable {
    public var instrument: Instrument
    /// The mode the feed must stream the instrument at (the highest any holder needs).
    public var brokerMode: SubscriptionMode
    /// At Depth, the most levels any holder asked for.
    public var levels: Int?
    /// Holders per mode.
    public var ltp: Int
    public var quote: Int
    public var depth: Int

    public init(instrument: Instrument, brokerMode: SubscriptionMode, levels: Int?, ltp: Int, quote: Int, depth: Int) {
        self.instrument = instrument
        self.brokerMode = brokerMode
        self.levels = levels
        self.ltp = ltp
        self.quote = quote
        self.depth = depth
    }
}

extension SubscriptionMode {
    /// This mode's bit in a member's mask.
    var bit: UInt8 { 1 << (self.rawValue - 1) }
}
