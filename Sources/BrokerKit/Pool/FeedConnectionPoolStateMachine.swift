import MarketData

/// How many broker connections one feed may open, and how many instruments each may carry.
package struct ConnectionPoolLimits: Sendable, Equatable {
    package var maximumConnections: Int
    package var maximumInstrumentsPerConnection: Int

    package init(maximumConnections: Int, maximumInstrumentsPerConnection: Int) {
        precondition(
            maximumConnections >= 1 && maximumInstrumentsPerConnection >= 1,
            "a pool has at least one connection with room for one instrument"
        )
        self.maximumConnections = maximumConnections
        self.maximumInstrumentsPerConnection = maximumInstrumentsPerConnection
    }
}

/// The decisions of a pool of broker connections behind one feed, without I/O: which connection
/// an instrument streams on, when a connection is opened or closed, and what state the feed as a
/// whole is in. ``FeedConnectionPool`` carries out its ``Action``s with one ``FeedSupervisor``
/// per connection, which does the reconnecting and re-subscribing of its own instruments.
///
/// Placement (spec §0.2, OpenAlgo's `ConnectionPool`): a new instrument is *reserved* a place on
/// the lowest-numbered connection with room (``ConnectionSlotAllocator``); it counts once there
/// whatever its mode, and keeps that place for mode changes (an upgrade or downgrade is sent on
/// the same connection) until it is released. When every connection is full, it is refused and
/// ``capacityMessage()`` is the reference's per-symbol text.
///
/// Connections: connection 0 (the primary) opens with ``start()`` and stays open while the pool
/// runs, even with nothing on it, so that the feed's state says whether the broker can be reached
/// and bad credentials show at once. Further connections open lazily, when an instrument placed
/// on them is first streamed, and close when their last instrument is released (a drop or stall
/// on one reconnects it alone, and it replays only its own instruments).
///
/// The feed's state (``state``) is an aggregate of the open connections:
/// - `failed` as soon as any connection fails for good; the pool then closes every other
///   connection and stays failed (the hub tells clients, who re-subscribe to a new pool);
/// - else `reconnecting(attempt)` while any connection is reconnecting, with the highest attempt
///   among them (the connection nearest to giving up);
/// - else `connected` when any connection is up: a connection that is still opening for the
///   first time, for instruments that did not fit on the others, is not the feed going down;
/// - else `connecting`; `disconnected` before ``start()`` and after ``stop()``.
package struct FeedConnectionPoolStateMachine: Sendable {
    /// Where the pool is.
    package enum Phase: Sendable, Equatable {
        case idle
        case running
        /// A connection failed for good; the pool stays failed (an adapter builds a new one).
        case failed(reason: String)
        case stopped
    }

    /// Where ``reserve(_:)`` placed an instrument.
    package enum Reservation: Sendable, Equatable {
        /// A new place on `connection`.
        case reserved(connection: Int)
        /// The instrument already had its place on `connection` (a mode change).
        case alreadyReserved(connection: Int)
        /// Every connection is full.
        case poolFull
    }

    /// What the driver must do, in order.
    package enum Action: Sendable, Equatable {
        /// Create connection `connection`'s supervisor and start it; the connection's state
        /// reports carry `generation`, so reports of an earlier supervisor on the same place are
        /// told apart.
        case open(connection: Int, generation: Int)
        /// Stream the instruments on `connection` at `mode` (new, upgraded or downgraded).
        case subscribe(connection: Int, instruments: [Instrument], mode: SubscriptionMode, depth: Int)
        /// Stop streaming the instruments on `connection`.
        case unsubscribe(connection: Int, instruments: [Instrument])
        /// Stop connection `connection`'s supervisor and forget it; its later reports are stale.
        case close(connection: Int)
        /// Tell the feed's sink the aggregate state changed.
        case report(FeedConnectionState)
    }

    private struct Connection: Sendable {
        var generation: Int
        var state: FeedConnectionState
    }

    package let limits: ConnectionPoolLimits
    package private(set) var phase: Phase = .idle
    private var allocator: ConnectionSlotAllocator
    /// Reserved instruments that are streamed (Dhan keeps a place for instruments it streams on
    /// its separate 20-level socket).
    private var streaming: Set<Instrument> = []
    private var connections: [Int: Connection] = [:]
    private var nextGeneration = 0
    private var reported = FeedConnectionState.disconnected

    package init(limits: ConnectionPoolLimits) {
        self.limits = limits
        self.allocator = ConnectionSlotAllocator(
            maximumConnections: limits.maximumConnections,
            maximumInstrumentsPerConnection: limits.maximumInstrumentsPerConnection
        )
    }

    /// The feed's state as a whole (see the type's documentation).
    package var state: FeedConnectionState {
        switch self.phase {
        case .idle, .stopped: return .disconnected
        case .failed(let reason): return .failed(reason: reason)
        case .running: return Self.aggregate(self.connections.values.map(\.state))
        }
    }

    /// The connections open now, in order.
    package var openConnections: [Int] { self.connections.keys.sorted() }

    /// Instruments with a place, on all connections.
    package var instrumentCount: Int { self.allocator.instrumentCount }

    /// The connection `instrument` has its place on, if any.
    package func connection(of instrument: Instrument) -> Int? { self.allocator.slot(of: instrument) }

    /// The reference pool's refusal text for an instrument that does not fit.
    package func capacityMessage() -> String { self.allocator.capacityMessage() }

    /// Opens the primary connection; only from `idle` (a failed or stopped pool is replaced, not restarted).
    package mutating func start() -> [Action] {
        guard self.phase == .idle else { return [] }
        self.phase = .running
        return [self.open(0)] + self.reportIfChanged()
    }

    /// Finds `instrument` a place (or the one it has); nothing is sent until ``subscribe(_:mode:depth:)``.
    package mutating func reserve(_ instrument: Instrument) -> Reservation {
        switch self.allocator.assign(instrument) {
        case .assigned(let slot, _): return .reserved(connection: slot)
        case .alreadyAssigned(let slot): return .alreadyReserved(connection: slot)
        case .poolFull: return .poolFull
        }
    }

    /// Streams reserved instruments at `mode` on their connections, opening those not open yet;
    /// instruments without a place are ignored.
    package mutating func subscribe(_ instruments: [Instrument], mode: SubscriptionMode, depth: Int) -> [Action] {
        let placed = self.grouped(instruments)
        for (_, group) in placed { self.streaming.formUnion(group) }
        guard self.phase == .running else { return [] }
        var actions: [Action] = []
        for (connection, group) in placed {
            if self.connections[connection] == nil { actions.append(self.open(connection)) }
            actions.append(.subscribe(connection: connection, instruments: group, mode: mode, depth: depth))
        }
        return actions + self.reportIfChanged()
    }

    /// Stops streaming instruments on their connections but keeps their places (the instrument
    /// moved to another socket and may come back).
    package mutating func stopStreaming(_ instruments: [Instrument]) -> [Action] {
        let placed = self.grouped(instruments.filter { self.streaming.remove($0) != nil })
        guard self.phase == .running else { return [] }
        return placed.compactMap { connection, group in
            self.connections[connection] == nil ? nil : .unsubscribe(connection: connection, instruments: group)
        }
    }

    /// Gives up the instruments' places: they are unsubscribed on their connections, and a
    /// connection other than the primary that is left with no instrument is closed instead.
    /// Instruments without a place are ignored.
    package mutating func release(_ instruments: [Instrument]) -> [Action] {
        var streamed: [Int: [Instrument]] = [:]
        var emptied: Set<Int> = []
        for instrument in instruments {
            let wasStreaming = self.streaming.remove(instrument) != nil
            guard let release = self.allocator.release(instrument) else { continue }
            if wasStreaming { streamed[release.slot, default: []].append(instrument) }
            if release.closesConnection { emptied.insert(release.slot) }
        }
        guard self.phase == .running else { return [] }
        var actions: [Action] = []
        for connection in Set(streamed.keys).union(emptied).sorted() where self.connections[connection] != nil {
            if connection != 0 && self.allocator.instrumentCount(onSlot: connection) == 0 {
                self.connections[connection] = nil
                actions.append(.close(connection: connection))
            } else if let group = streamed[connection] {
                actions.append(.unsubscribe(connection: connection, instruments: group))
            }
        }
        return actions + self.reportIfChanged()
    }

    /// Connection `connection`'s supervisor (of `generation`) reported `state`.
    package mutating func connectionStateChanged(_ connection: Int, generation: Int, to state: FeedConnectionState) -> [Action] {
        guard self.phase == .running, self.connections[connection]?.generation == generation else { return [] }
        guard case .failed(let reason) = state else {
            self.connections[connection]?.state = state
            return self.reportIfChanged()
        }
        self.phase = .failed(reason: reason)
        let others = self.openConnections.filter { $0 != connection }
        self.connections.removeAll()
        return others.map { .close(connection: $0) } + [.close(connection: connection)] + self.reportIfChanged()
    }

    /// Closes every connection and forgets every place (the adapter is being disconnected).
    package mutating func stop() -> [Action] {
        let open = self.openConnections
        self.phase = .stopped
        self.connections.removeAll()
        self.streaming.removeAll()
        self.allocator = ConnectionSlotAllocator(
            maximumConnections: self.limits.maximumConnections,
            maximumInstrumentsPerConnection: self.limits.maximumInstrumentsPerConnection
        )
        return open.map { .close(connection: $0) } + self.reportIfChanged()
    }

    private mutating func open(_ connection: Int) -> Action {
        self.nextGeneration += 1
        self.connections[connection] = Connection(generation: self.nextGeneration, state: .connecting)
        return .open(connection: connection, generation: self.nextGeneration)
    }

    /// Instruments with a place, grouped by connection, in connection order; each group keeps
    /// the order given.
    private func grouped(_ instruments: [Instrument]) -> [(Int, [Instrument])] {
        var groups: [Int: [Instrument]] = [:]
        for instrument in instruments {
            guard let connection = self.allocator.slot(of: instrument) else { continue }
            groups[connection, default: []].append(instrument)
        }
        return groups.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private mutating func reportIfChanged() -> [Action] {
        let state = self.state
        guard state != self.reported else { return [] }
        self.reported = state
        return [.report(state)]
    }

    /// The worst of the connections' states; a connection opening for the first time counts
    /// only when no connection is up.
    static func aggregate(_ states: [FeedConnectionState]) -> FeedConnectionState {
        var highestAttempt: Int?
        var anyConnected = false
        var anyDisconnected = false
        for state in states {
            switch state {
            case .failed(let reason): return .failed(reason: reason)
            case .reconnecting(let attempt): highestAttempt = max(highestAttempt ?? attempt, attempt)
            case .connected: anyConnected = true
            case .disconnected: anyDisconnected = true
            case .connecting: break
            }
        }
        if let highestAttempt { return .reconnecting(attempt: highestAttempt) }
        if anyDisconnected || states.isEmpty { return .disconnected }
        return anyConnected ? .connected : .connecting
    }
}
