import BrokerKit
import MarketData

/// Reads SmartAPI's scrip master (`OpenAPIScripMaster.json`) into a ``SymbolMaster``.
///
/// SmartAPI's F&O symbols on NFO already read as OpenAlgo's (`NIFTY28DEC2425000CE`); what needs
/// converting is equity series suffixes (`RELIANCE-EQ` → `RELIANCE`), indices (`AMXIDX` rows move to
/// `NSE_INDEX`/`BSE_INDEX`/`MCX_INDEX` and take OpenAlgo's names), and the BFO, MCX and CDS
/// contracts, which are rebuilt as `NAME + DDMMMYY + FUT` or `NAME + DDMMMYY + STRIKE + CE|PE`.
package enum AngelOneScripMaster {
    static let equitySuffixes = ["-EQ", "-BE", "-MF", "-SG"]
    static let futureTypes: Set<String> = ["FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR", "FUTIRC", "FUTIRT"]
    /// Contracts whose SmartAPI symbol is not already OpenAlgo's, by (exchange, instrument type).
    static let rebuiltFutures: Set<String> = ["CDS FUTCUR", "CDS FUTIRC", "MCX FUTCOM", "BFO FUTIDX", "BFO FUTSTK"]
    static let rebuiltOptions: Set<String> = ["CDS OPTCUR", "CDS OPTIRC", "MCX OPTFUT", "BFO OPTIDX", "BFO OPTSTK"]

    package static func parse(json text: String) throws(SymbolMasterError) -> SymbolMaster {
        var records = FlatJSONRecords(text)
        var master = SymbolMaster()
        while let record = try records.next() {
            if let entry = self.entry(record) { master.insert(entry) }
        }
        return master
    }

    package static func parse(json bytes: some Collection<UInt8>) throws(SymbolMasterError) -> SymbolMaster {
        try self.parse(json: String(decoding: bytes, as: UTF8.self))
    }

    static func entry(_ record: [String: String]) -> BrokerInstrument? {
        let segment = record["exch_seg"] ?? ""
        let token = record["token"] ?? ""
        let brokerSymbol = record["symbol"] ?? ""
        guard let exchangeType = AngelOneExchangeType(brokerExchange: segment), !token.isEmpty, !brokerSymbol.isEmpty else {
            return nil
        }
        let name = record["name"] ?? ""
        var type = record["instrumenttype"] ?? ""
        var exchange = segment
        if type == "AMXIDX" {
            switch segment {
            case "NSE": exchange = "NSE_INDEX"
            case "BSE": exchange = "BSE_INDEX"
            case "MCX": exchange = "MCX_INDEX"
            default: break
            }
        }
        var symbol = self.withoutEquitySuffix(brokerSymbol)
        let expiry = ContractNaming.expiry(dayMonthYear: record["expiry"] ?? "")
        let key = "\(segment) \(type)"
        if self.rebuiltFutures.contains(key), let expiry, !name.isEmpty {
            symbol = name + expiry + "FUT"
        } else if self.rebuiltOptions.contains(key), let expiry, !name.isEmpty, let strike = self.strike(record, currency: segment == "CDS"),
            brokerSymbol.hasSuffix("CE") || brokerSymbol.hasSuffix("PE")
        {
            symbol = name + expiry + ContractNaming.strike(strike) + String(brokerSymbol.suffix(2))
        } else if exchange == "NSE_INDEX" {
            symbol = self.indexSymbol(name.indexSymbolForm())
        } else if exchange == "BSE_INDEX" {
            symbol = self.indexSymbol(name.uppercased().replacing("S&P ", with: "").indexSymbolForm())
        }
        if type.hasPrefix("OPT"), brokerSymbol.hasSuffix("CE") || brokerSymbol.hasSuffix("PE") {
            type = String(brokerSymbol.suffix(2))
        } else if self.futureTypes.contains(type) {
            type = "FUT"
        }
        return BrokerInstrument(
            instrument: Instrument(exchange: exchange, symbol: symbol),
            token: token,
            brokerExchange: segment,
            feedSegment: exchangeType.rawValue,
            brokerSymbol: brokerSymbol,
            instrumentType: type,
            lotSize: Int(record["lotsize"] ?? "") ?? 0
        )
    }

    private static func withoutEquitySuffix(_ symbol: String) -> String {
        for suffix in self.equitySuffixes where symbol.hasSuffix(suffix) {
            return String(symbol.dropLast(suffix.count))
        }
        return symbol
    }

    private static func indexSymbol(_ form: String) -> String {
        if form == "SNSX50" { return "SENSEX50" }
        return IndexSymbols.nse[form] ?? form
    }

    /// SmartAPI strikes are in paise, currency strikes in 1e-7 rupee.
    private static func strike(_ record: [String: String], currency: Bool) -> Double? {
        guard let raw = Double(record["strike"] ?? ""), raw > 0 else { return nil }
        return currency ? raw / 10_000_000 : raw / 100
    }
}
