import BrokerKit
import MarketData

/// Reads Dhan's scrip master (`api-scrip-master.csv`) into a ``SymbolMaster``.
///
/// Dhan streams by (segment, security id). OpenAlgo symbols come from the row's kind: equities and
/// indices keep the trading symbol (indices normalised to OpenAlgo's names), futures become
/// `UNDERLYING + DDMMMYY + FUT` and options `UNDERLYING + DDMMMYY + STRIKE + CE|PE`, with the
/// underlying and strike taken from Dhan's custom symbol (`NIFTY 26 DEC 25000 CALL`). Rows on
/// segments OpenAlgo does not map are skipped.
package enum DhanScripMaster {
    static let columns = [
        "SEM_EXM_EXCH_ID", "SEM_SMST_SECURITY_ID", "SEM_INSTRUMENT_NAME", "SEM_TRADING_SYMBOL", "SEM_LOT_UNITS",
        "SEM_CUSTOM_SYMBOL", "SEM_EXPIRY_DATE", "SEM_OPTION_TYPE",
    ]

    /// NSE index names OpenAlgo documents; other NSE indices keep Dhan's trading symbol.
    static let documentedNSEIndices: Set<String> = [
        "NIFTY", "NIFTYNXT50", "FINNIFTY", "BANKNIFTY", "MIDCPNIFTY", "INDIAVIX", "HANGSENGBEESNAV", "NIFTY100", "NIFTY200",
        "NIFTY500", "NIFTYALPHA50", "NIFTYAUTO", "NIFTYCOMMODITIES", "NIFTYCONSUMPTION", "NIFTYCPSE", "NIFTYDIVOPPS50",
        "NIFTYENERGY", "NIFTYFMCG", "NIFTYGROWSECT15", "NIFTYGS10YR", "NIFTYGS10YRCLN", "NIFTYGS1115YR", "NIFTYGS15YRPLUS",
        "NIFTYGS48YR", "NIFTYGS813YR", "NIFTYGSCOMPSITE", "NIFTYINFRA", "NIFTYIT", "NIFTYMEDIA", "NIFTYMETAL", "NIFTYMIDLIQ15",
        "NIFTYMIDCAP100", "NIFTYMIDCAP150", "NIFTYMIDCAP50", "NIFTYMIDSML400", "NIFTYMNC", "NIFTYPHARMA", "NIFTYPSE",
        "NIFTYPSUBANK", "NIFTYPVTBANK", "NIFTYREALTY", "NIFTYSERVSECTOR", "NIFTYSMLCAP100", "NIFTYSMLCAP250", "NIFTYSMLCAP50",
        "NIFTY100EQLWGT", "NIFTY100LIQ15", "NIFTY100LOWVOL30", "NIFTY100QUALTY30", "NIFTY200QUALTY30", "NIFTY50DIVPOINT",
        "NIFTY50EQLWGT", "NIFTY50PR1XINV", "NIFTY50PR2XLEV", "NIFTY50TR1XINV", "NIFTY50TR2XLEV", "NIFTY50VALUE20",
    ]

    package static func parse(csv text: String) throws(SymbolMasterError) -> SymbolMaster {
        var records = CSVRecords(text)
        guard let header = records.next() else { throw SymbolMasterError("Dhan scrip master is empty") }
        let columns = try CSVColumns(header: header, required: self.columns, file: "Dhan scrip master")
        var master = SymbolMaster()
        while let row = records.next() {
            if let entry = self.entry(row, columns) { master.insert(entry) }
        }
        return master
    }

    package static func parse(csv bytes: some Collection<UInt8>) throws(SymbolMasterError) -> SymbolMaster {
        try self.parse(csv: String(decoding: bytes, as: UTF8.self))
    }

    /// OpenAlgo exchange, Dhan segment and instrument type of a row, as the reference assigns them.
    static func classify(exchange: String, instrument: String, optionType: String) -> (String, DhanExchangeSegment, String)? {
        let derivativeType = instrument.hasPrefix("OPT") ? optionType : "FUT"
        switch (exchange, instrument) {
        case ("NSE", "EQUITY"): return ("NSE", .nseEquity, "EQ")
        case ("BSE", "EQUITY"): return ("BSE", .bseEquity, "EQ")
        case ("NSE", "INDEX"): return ("NSE_INDEX", .index, "INDEX")
        case ("BSE", "INDEX"): return ("BSE_INDEX", .index, "INDEX")
        case ("MCX", "FUTIDX"), ("MCX", "FUTCOM"), ("MCX", "OPTFUT"): return ("MCX", .mcxCommodity, derivativeType)
        case ("NSE", "FUTIDX"), ("NSE", "FUTSTK"), ("NSE", "OPTIDX"), ("NSE", "OPTSTK"), ("NSE", "OPTFUT"):
            return ("NFO", .nseDerivatives, derivativeType)
        case ("NSE", "FUTCUR"), ("NSE", "OPTCUR"): return ("CDS", .nseCurrency, derivativeType)
        case ("BSE", "FUTIDX"), ("BSE", "FUTSTK"), ("BSE", "OPTIDX"), ("BSE", "OPTSTK"): return ("BFO", .bseDerivatives, derivativeType)
        case ("BSE", "FUTCUR"), ("BSE", "OPTCUR"): return ("BCD", .bseCurrency, derivativeType)
        default: return nil
        }
    }

    static func entry(_ row: [String], _ columns: CSVColumns) -> BrokerInstrument? {
        let instrumentName = columns.value("SEM_INSTRUMENT_NAME", in: row)
        guard
            let (exchange, segment, type) = self.classify(
                exchange: columns.value("SEM_EXM_EXCH_ID", in: row),
                instrument: instrumentName,
                optionType: columns.value("SEM_OPTION_TYPE", in: row)
            )
        else { return nil }
        let securityID = columns.value("SEM_SMST_SECURITY_ID", in: row)
        let tradingSymbol = columns.value("SEM_TRADING_SYMBOL", in: row)
        guard !securityID.isEmpty, !tradingSymbol.isEmpty else { return nil }
        let custom = columns.value("SEM_CUSTOM_SYMBOL", in: row)
        let parts = custom.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let expiry = ContractNaming.expiry(isoDate: columns.value("SEM_EXPIRY_DATE", in: row))
        var symbol: String
        switch (exchange, type) {
        case ("NSE_INDEX", _): symbol = self.nseIndexSymbol(tradingSymbol)
        case ("BSE_INDEX", _): symbol = IndexSymbols.bse[tradingSymbol.indexSymbolForm()] ?? tradingSymbol
        case (_, "EQ"): symbol = tradingSymbol
        case (_, "FUT"):
            symbol = custom
            if let expiry, parts.count == 3 || parts.count == 4 { symbol = parts[0] + expiry + "FUT" }
        case (_, "CE"), (_, "PE"):
            symbol = custom
            if let expiry, parts.count == 4 || parts.count == 5 { symbol = parts[0] + expiry + parts[parts.count - 2] + type }
        default: symbol = custom
        }
        guard !symbol.isEmpty else { return nil }
        return BrokerInstrument(
            instrument: Instrument(exchange: exchange, symbol: symbol),
            token: securityID,
            brokerExchange: segment.name,
            feedSegment: segment.rawValue,
            brokerSymbol: tradingSymbol,
            instrumentType: type,
            lotSize: ContractNaming.count(columns.value("SEM_LOT_UNITS", in: row))
        )
    }

    private static func nseIndexSymbol(_ tradingSymbol: String) -> String {
        let form = tradingSymbol.indexSymbolForm()
        let renamed = IndexSymbols.dhanNSE[form] ?? form
        return self.documentedNSEIndices.contains(renamed) ? renamed : tradingSymbol
    }
}
