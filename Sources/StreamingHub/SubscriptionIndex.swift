import MarketData

/// What the broker must be told after the index changed, so that exactly the highest mode anyone
/// still needs is streamed for each instrument.
public enum BrokerSubscriptionChange: Sendable, Equatable {
    /// Stream the instrument at a new mode (an upgrade or a downgrade).
    case setMode(SubscriptionMode)
    /// Nobody needs the instrument any more.
    case unsubscribe
}

/// Whether a new subscription needs the broker, decided before the broker is asked.
public enum SubscriptionReservation: Sendable, Equatable {
    /// The broker already streams this instrument at this mode or higher: confirm at once.
    case covered
    /// The broker must be asked to stream at this mode; confirm or cancel with its answer.
    case needsBroker
}

/// The subscription index: for each instrument, who subscribed at which modes, and the reference
/// counts that decide what the broker is asked to stream.
///
/// Lookup for a tick is one hash of the instrument, then a walk over a contiguous array of
/// members, each with a bit mask of its modes, which gives the reference's fan-out rule in one
/// pass: each member receives a tick once, tagged with its highest mode at or below the tick's.
///
/// Counts include reservations (subscriptions waiting for the broker's answer), so a concurrent
/// unsubscribe never tears down a broker subscription that a pending request is about to use.
public struct SubscriptionIndex<Member: Hashable> {
    struct Entry {
        var members: [Member] = []
        var masks: [UInt8] = []
        var positions: [Member: Int] = [:]
        /// Confirmed members plus reservations, per mode (index 0 is LTP).
        var counts: (Int, Int, Int) = (0, 0, 0)

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

        func count(_ mode: SubscriptionMode) -> Int {
            switch mode {
            case .ltp: return self.counts.0
            case .quote: return self.counts.1
            case .depth: return self.counts.2
            }
        }
    }

    private var entries: [Instrument: Entry] = [:]

    public init() {}

    /// Instruments with at least one subscription or reservation.
    public var instrumentCount: Int { self.entries.count }

    /// The mode the broker streams (or is being asked to stream) for `instrument`.
    public func brokerMode(for instrument: Instrument) -> SubscriptionMode? {
        self.entries[instrument]?.highestMode
    }

    /// The number of members and reservations at `mode` for `instrument`: the reference count.
    public func referenceCount(_ instrument: Instrument, _ mode: SubscriptionMode) -> Int {
        self.entries[instrument]?.count(mode) ?? 0
    }

    /// Whether `member` holds `mode` on `instrument`.
    public func contains(_ member: Member, _ instrument: Instrument, _ mode: SubscriptionMode) -> Bool {
        guard let entry = self.entries[instrument], let position = entry.positions[member] else { return false }
        return entry.masks[position] & mode.bit != 0
    }

    /// Starts a subscription. A `.needsBroker` answer holds a reservation until
    /// ``confirm(_:_:_:reserved:)`` or ``cancelReservation(_:_:brokerSubscribed:)``.
    public mutating func reserve(_ instrument: Instrument, _ mode: SubscriptionMode) -> SubscriptionReservation {
        if let current = self.entries[instrument]?.highestMode, current >= mode { return .covered }
        self.entries[instrument, default: Entry()].adjust(mode, by: 1)
        return .needsBroker
    }

    /// Adds `member` at `mode`. Subscribing twice to the same mode is idempotent, as in the reference.
    public mutating func confirm(_ member: Member, _ instrument: Instrument, _ mode: SubscriptionMode, reserved: Bool) {
        var entry = self.entries[instrument] ?? Entry()
        if reserved { entry.adjust(mode, by: -1) }
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
        self.entries[instrument] = entry
    }

    /// Drops a reservation whose broker request did not lead to a member. When the broker did
    /// subscribe (the requester left meanwhile), the change that undoes it is returned.
    public mutating func cancelReservation(
        _ instrument: Instrument,
        _ mode: SubscriptionMode,
        brokerSubscribed: Bool
    ) -> BrokerSubscriptionChange? {
        guard var entry = self.entries[instrument] else { return nil }
        let before = entry.highestMode
        entry.adjust(mode, by: -1)
        return self.store(entry, for: instrument, before: brokerSubscribed ? before : entry.highestMode)
    }

    /// Removes `member`'s `mode` subscription; returns whether it existed and what the broker must do.
    public mutating func remove(
        _ member: Member,
        _ instrument: Instrument,
        _ mode: SubscriptionMode
    ) -> (removed: Bool, change: BrokerSubscriptionChange?) {
        guard var entry = self.entries[instrument], let position = entry.positions[member],
            entry.masks[position] & mode.bit != 0
        else { return (false, nil) }
        let before = entry.highestMode
        entry.masks[position] &= ~mode.bit
        entry.adjust(mode, by: -1)
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
        return (true, self.store(entry, for: instrument, before: before))
    }

    private mutating func store(_ entry: Entry, for instrument: Instrument, before: SubscriptionMode?) -> BrokerSubscriptionChange? {
        let after = entry.highestMode
        if after == nil && entry.members.isEmpty {
            self.entries[instrument] = nil
        } else {
            self.entries[instrument] = entry
        }
        guard let before, before != after else { return nil }
        guard let after else { return .unsubscribe }
        return after < before ? .setMode(after) : nil
    }

    /// Every instrument with its broker mode and the number of members (and reservations) per
    /// mode, for status listings.
    public func summary() -> [InstrumentSubscriptionSummary] {
        self.entries.compactMap { instrument, entry in
            guard let mode = entry.highestMode else { return nil }
            return InstrumentSubscriptionSummary(
                instrument: instrument,
                brokerMode: mode,
                ltp: entry.counts.0,
                quote: entry.counts.1,
                depth: entry.counts.2
            )
        }
    }

    /// Calls `body` once per member that should receive a tick of `tickMode`, with the mode to
    /// tag its frame with: the member's highest mode at or below the tick's (reference §5.4).
    public func forEachRecipient(
        of instrument: Instrument,
        tickMode: SubscriptionMode,
        _ body: (Member, SubscriptionMode) throws -> Void
    ) rethrows {
        guard let entry = self.entries[instrument] else { return }
        try Self.walk(entry, tickMode: tickMode, body)
    }

    static func walk(_ entry: Entry, tickMode: SubscriptionMode, _ body: (Member, SubscriptionMode) throws -> Void) rethrows {
        let allowed: UInt8 = (1 << tickMode.rawValue) - 1
        for position in entry.members.indices {
            let mask = entry.masks[position] & allowed
            if mask == 0 { continue }
            let mode = SubscriptionMode(rawValue: UInt8(UInt8.bitWidth - mask.leadingZeroBitCount))!
            try body(entry.members[position], mode)
        }
    }
}

/// One instrument of the index as status listings show it.
public struct InstrumentSubscriptionSummary: Sendable, Equatable {
    public var instrument: Instrument
    /// The mode the broker streams the instrument at (the highest any subscriber needs).
    public var brokerMode: SubscriptionMode
    /// Subscribers per mode.
    public var ltp: Int
    public var quote: Int
    public var depth: Int
}

extension SubscriptionMode {
    /// This mode's bit in a member's mask.
    var bit: UInt8 { 1 << (self.rawValue - 1) }
}
