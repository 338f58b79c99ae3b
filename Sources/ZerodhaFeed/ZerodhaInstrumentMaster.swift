import BrokerKit
import MarketData

/// Reads Kite's `instruments` CSV (`GET https://api.kite.trade/instruments`) into a ``SymbolMaster``.
///
/// Kite already streams by numeric `instrument_token`; what this adds is OpenAlgo's symbol for each
/// row: futures `NAME + DDMMMYY + FUT`, options `NAME + DDMMMYY + STRIKE + CE|PE`, indices moved to
/// `NSE_INDEX`/`BSE_INDEX`/`MCX_INDEX`/`CDS_INDEX` with OpenAlgo's index names, global indices to
/// `GLOBAL_INDEX`. Rows on exchanges OpenAlgo does not list are skipped.
package enum ZerodhaInstrumentMaster {
    static let columns = ["instrument_token", "tradingsymbol", "name", "expiry", "strike", "lot_size", "instrument_type", "segment", "exchange"]

    /// Kite exchange → OpenAlgo exchange, before indices are moved to their index exchanges.
    static let exchanges: [String: String] = [
        "NSE": "NSE", "NFO": "NFO", "CDS": "CDS", "BSE": "BSE", "BFO": "BFO", "BCD": "BCD", "MCX": "MCX", "NCO": "NCO",
        "GLOBAL": "GLOBAL_INDEX", "NSEIX": "GLOBAL_INDEX",
    ]

    package static func parse(csv text: String) throws(SymbolMasterError) -> SymbolMaster {
        var records = CSVRecords(text)
        guard let header = records.next() else { throw SymbolMasterError("Kite instruments file is empty") }
        let columns = try CSVColumns(header: header, required: self.columns, file: "Kite instruments file")
        var master = SymbolMaster()
        while let row = records.next() {
            if let entry = self.entry(row, columns) { master.insert(entry) }
        }
        return master
    }

    package static func parse(csv bytes: some Collection<UInt8>) throws(SymbolMasterError) -> SymbolMaster {
        try self.parse(csv: String(decoding: bytes, as: UTF8.self))
    }

    static func entry(_ row: [String], _ columns: CSVColumns) -> BrokerInstrument? {
        let kiteExchange = columns.value("exchange", in: row)
        guard let token = UInt32(columns.value("instrument_token", in: row)), var exchange = self.exchanges[kiteExchange] else {
            return nil
        }
        let tradingSymbol = columns.value("tradingsymbol", in: row)
        let name = columns.value("name", in: row)
        let type = columns.value("instrument_type", in: row)
        if columns.value("segment", in: row) == "INDICES" {
            switch exchange {
            case "NSE": exchange = "NSE_INDEX"
            case "BSE": exchange = "BSE_INDEX"
            case "MCX": exchange = "MCX_INDEX"
            case "CDS": exchange = "CDS_INDEX"
            default: break
            }
        }
        var symbol = tradingSymbol
        let expiry = ContractNaming.expiry(isoDate: columns.value("expiry", in: row))
        switch (exchange, type) {
        case ("NSE_INDEX", _):
            symbol = IndexSymbols.nseSymbol(tradingSymbol)
        case ("BSE_INDEX", _):
            symbol = IndexSymbols.bseSymbol(tradingSymbol)
        case (_, "FUT"):
            if let expiry, !name.isEmpty { symbol = name + expiry + "FUT" }
        case (_, "CE"), (_, "PE"):
            if let expiry, !name.isEmpty, let strike = Double(columns.value("strike", in: row)) {
                symbol = name + expiry + ContractNaming.strike(strike) + type
            }
        default:
            break
        }
        guard !symbol.isEmpty else { return nil }
        return BrokerInstrument(
            instrument: Instrument(exchange: exchange, symbol: symbol),
            token: String(token),
            brokerExchange: kiteExchange,
            feedSegment: UInt8(truncatingIfNeeded: token),
            brokerSymbol: tradingSymbol,
            instrumentType: type,
            lotSize: Int(columns.value("lot_size", in: row)) ?? 0
        )
    }
}
