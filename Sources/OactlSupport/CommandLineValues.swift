import MarketData

/// Parses `EXCHANGE:SYMBOL`, the way instruments are written on the command line
/// (`NSE:RELIANCE`, `NSE_INDEX:NIFTY`, `NFO:NIFTY28DEC2425000CE`).
public enum InstrumentArgument {
    public static func parse(_ text: String) throws(CommandLineValueError) -> Instrument {
        guard let colon = text.firstIndex(of: ":") else {
            throw CommandLineValueError("'\(text)' is not EXCHANGE:SYMBOL (e.g. NSE:RELIANCE, NSE_INDEX:NIFTY)")
        }
        let exchange = text[..<colon].uppercased()
        let symbol = String(text[text.index(after: colon)...])
        guard !exchange.isEmpty, exchange.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw CommandLineValueError("'\(text)' has no valid exchange before ':' (e.g. NSE:RELIANCE, NSE_INDEX:NIFTY)")
        }
        guard !symbol.isEmpty, !symbol.contains(where: \.isWhitespace) else {
            throw CommandLineValueError("'\(text)' has no symbol after ':' (e.g. NSE:RELIANCE)")
        }
        return Instrument(exchange: exchange, symbol: symbol)
    }
}

/// Parses durations as people write them: `30s`, `500ms`, `2m`, `1h`, `1m30s`, or a plain number
/// of seconds.
public enum DurationArgument {
    /// Ten years (87600 h): longer than any timeout or recording, and short enough that every part
    /// converts to whole milliseconds or seconds without trapping and no sum of parts overflows.
    /// `1e300` or a digit string too long for a double would otherwise stop oactl with a trap.
    private static let longest = Duration.seconds(longestSeconds)
    private static let longestSeconds: Int64 = 10 * 365 * 86_400

    public static func parse(_ text: String) throws(CommandLineValueError) -> Duration {
        let trimmed = text.trimmingCharacters(in: " ")
        let tooLong = CommandLineValueError("'\(text)' is too long a duration; at most 87600h (10 years)")
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite {
            guard seconds <= Double(Self.longestSeconds) else { throw tooLong }
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        var total = Duration.zero
        var number = ""
        var unit = ""
        var parts = 0
        func flush() throws(CommandLineValueError) {
            guard let value = Double(number), value >= 0 else { throw CommandLineValueError("'\(text)' is not a duration (e.g. 30s, 2m, 500ms)") }
            func within(seconds: Double) throws(CommandLineValueError) {
                guard seconds <= Double(Self.longestSeconds) else { throw tooLong }
            }
            switch unit {
            case "ms":
                try within(seconds: value / 1000)
                total += .milliseconds(Int64(value.rounded()))
            case "s":
                try within(seconds: value)
                total += .milliseconds(Int64((value * 1000).rounded()))
            case "m":
                try within(seconds: value * 60)
                total += .seconds(Int64((value * 60).rounded()))
            case "h":
                try within(seconds: value * 3600)
                total += .seconds(Int64((value * 3600).rounded()))
            default: throw CommandLineValueError("'\(text)' has an unknown unit '\(unit)'; use ms, s, m or h")
            }
            // Each part is at most the longest, so the sum of two cannot overflow.
            guard total <= Self.longest else { throw tooLong }
            parts += 1
            number = ""
            unit = ""
        }
        for character in trimmed {
            if character.isNumber || character == "." {
                if !unit.isEmpty { try flush() }
                number.append(character)
            } else if character.isLetter {
                guard !number.isEmpty else { throw CommandLineValueError("'\(text)' is not a duration (e.g. 30s, 2m, 500ms)") }
                unit.append(character)
            } else {
                throw CommandLineValueError("'\(text)' is not a duration (e.g. 30s, 2m, 500ms)")
            }
        }
        guard !number.isEmpty else { throw CommandLineValueError("'\(text)' is not a duration (e.g. 30s, 2m, 500ms)") }
        try flush()
        return total
    }
}

/// Parses a mode as `LTP`, `Quote`, `Depth` (any case) or 1, 2, 3.
public enum ModeArgument {
    public static func parse(_ text: String) throws(CommandLineValueError) -> SubscriptionMode {
        if let number = Int(text), let mode = SubscriptionMode(rawValue: UInt8(clamping: max(0, number))), number >= 1 {
            return mode
        }
        guard let mode = SubscriptionMode(label: text) else {
            throw CommandLineValueError("'\(text)' is not a mode; use LTP, Quote or Depth")
        }
        return mode
    }
}

/// A command-line value that cannot be used; the message names it and shows a valid example.
public struct CommandLineValueError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var slice = Substring(self)
        while slice.first == set { slice = slice.dropFirst() }
        while slice.last == set { slice = slice.dropLast() }
        return String(slice)
    }
}

/// The instruments of a streaming command, written any way the official Go CLI accepts them:
/// `EXCHANGE:SYMBOL` arguments, a comma-separated `--symbols` list, bare symbols with
/// `--exchange`, or `--symbol` with `--exchange`. Duplicates are dropped, order is kept.
public enum InstrumentList {
    public static func parse(
        arguments: [String],
        symbols: String?,
        symbol: String?,
        exchange: String?
    ) throws(CommandLineValueError) -> [Instrument] {
        var texts = arguments
        if let symbols {
            texts += symbols.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }.filter { !$0.isEmpty }
        }
        var result: [Instrument] = []
        func add(_ instrument: Instrument) {
            if !result.contains(instrument) { result.append(instrument) }
        }
        for text in texts {
            if !text.contains(":"), let exchange {
                add(try InstrumentArgument.parse("\(exchange):\(text)"))
            } else {
                add(try InstrumentArgument.parse(text))
            }
        }
        if let symbol {
            guard let exchange else { throw CommandLineValueError("--symbol \(symbol) needs --exchange (e.g. --exchange NSE)") }
            add(try InstrumentArgument.parse("\(exchange):\(symbol)"))
        }
        guard !result.isEmpty else { throw CommandLineValueError("give at least one symbol, e.g. NSE:RELIANCE") }
        return result
    }
}
