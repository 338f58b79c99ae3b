import ArgumentParser
import MarketData
import OactlSupport

/// The symbols, mode and depth of `subscribe` and `record`, in every style the official openalgo
/// CLI's `stream` takes them: `EXCHANGE:SYMBOL` arguments, `--symbols a,b`, bare symbols or
/// `--symbol` with `--exchange`.
struct MarketDataSelection: ParsableArguments {
    @Argument(help: ArgumentHelp("Symbols as EXCHANGE:SYMBOL.", valueName: "symbol"))
    var symbols: [String] = []

    @Option(name: .customLong("symbols"), help: ArgumentHelp("A comma-separated list, e.g. NSE:RELIANCE,NSE:SBIN.", valueName: "list"))
    var symbolList: String?

    @Option(help: "One symbol, with --exchange.")
    var symbol: String?

    @Option(help: "The exchange of --symbol and of bare symbols (NSE, BSE, NFO, NSE_INDEX, ...).")
    var exchange: String?

    @Option(help: "LTP, Quote or Depth.", completion: .list(["LTP", "Quote", "Depth"]))
    var mode = "Quote"

    @Option(help: "Book levels in Depth mode: 5, 20, 30 or 50.")
    var depth = 5

    /// Whether no symbol was given in any style (`record --stop` takes none).
    var namesNoSymbol: Bool {
        self.symbols.isEmpty && self.symbolList == nil && self.symbol == nil
    }

    func instruments() throws -> [Instrument] {
        do {
            return try InstrumentList.parse(arguments: self.symbols, symbols: self.symbolList, symbol: self.symbol, exchange: self.exchange)
        } catch {
            throw ValidationError("invalid symbol: \(error)")
        }
    }

    func subscriptionMode() throws -> SubscriptionMode {
        do {
            return try ModeArgument.parse(self.mode)
        } catch {
            throw ValidationError("--mode: \(error)")
        }
    }

    /// Checks the symbols, the mode and the depth, for a command's `validate()`.
    func check() throws {
        _ = try self.instruments()
        _ = try self.subscriptionMode()
        guard [5, 20, 30, 50].contains(self.depth) else { throw ValidationError("--depth must be 5, 20, 30 or 50") }
    }
}
