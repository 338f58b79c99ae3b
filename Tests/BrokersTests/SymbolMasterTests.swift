import MarketData
import Testing

@testable import AngelOneFeed
@testable import BrokerKit
@testable import DhanFeed
@testable import ZerodhaFeed

@Suite("Broker instrument masters")
struct SymbolMasterTests {
    static let kiteCSV = """
        instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange
        738561,2885,RELIANCE,"RELIANCE INDUSTRIES, LTD",0,,0,0.05,1,EQ,NSE,NSE
        256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE
        260105,1016,NIFTY BANK,NIFTY BANK,0,,0,0,0,EQ,INDICES,NSE
        265,1,SENSEX,SENSEX,0,,0,0,0,EQ,INDICES,BSE
        274441,1072,AUTO,AUTO,0,,0,0,0,EQ,INDICES,BSE
        13368834,52222,NIFTY24DECFUT,NIFTY,0,2024-12-26,0,0.05,25,FUT,NFO-FUT,NFO
        12345602,48225,NIFTY24D2625000CE,NIFTY,0,2024-12-26,25000,0.05,25,CE,NFO-OPT,NFO
        9999874,39062,IDEA24DEC187.5PE,IDEA,0,2024-12-26,187.5,0.05,40000,PE,NFO-OPT,NFO
        291849,1140,GIFT NIFTY,GIFT NIFTY,0,,0,0,0,EQ,INDICES,NSEIX
        111,1,SOMETHING,SOMETHING,0,,0,0,0,EQ,XYZ,XYZ

        """

    @Test("Kite's CSV maps to OpenAlgo symbols both ways, with the feed segment from the token")
    func kite() throws {
        let master = try ZerodhaInstrumentMaster.parse(csv: Self.kiteCSV)
        #expect(master.count == 9)
        let reliance = try #require(master.entry(for: Instrument(exchange: "NSE", symbol: "RELIANCE")))
        #expect(reliance.token == "738561")
        #expect(reliance.feedSegment == 1)
        #expect(reliance.brokerExchange == "NSE")
        #expect(master.entry(feedSegment: 1, token: "738561")?.instrument == Instrument(exchange: "NSE", symbol: "RELIANCE"))
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"))?.token == "256265")
        #expect(master.entry(feedSegment: 9, token: "256265")?.instrument.symbol == "NIFTY")
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "BANKNIFTY"))?.brokerSymbol == "NIFTY BANK")
        #expect(master.entry(for: Instrument(exchange: "BSE_INDEX", symbol: "SENSEX"))?.token == "265")
        #expect(master.entry(for: Instrument(exchange: "BSE_INDEX", symbol: "BSEAUTO"))?.token == "274441")
        let future = try #require(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC24FUT")))
        #expect(future.lotSize == 25)
        #expect(future.brokerSymbol == "NIFTY24DECFUT")
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC2425000CE"))?.token == "12345602")
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "IDEA26DEC24187.5PE"))?.instrumentType == "PE")
        #expect(master.entry(for: Instrument(exchange: "GLOBAL_INDEX", symbol: "GIFT NIFTY"))?.brokerExchange == "NSEIX")
        #expect(master.entry(for: Instrument(exchange: "NSE", symbol: "TCS")) == nil)
        #expect(master.entry(feedSegment: 2, token: "738561") == nil)
    }

    @Test("a Kite file without its columns is refused with their names")
    func kiteMissingColumns() {
        #expect(throws: SymbolMasterError("Kite instruments file lacks the column(s) instrument_type, segment")) {
            try ZerodhaInstrumentMaster.parse(csv: "instrument_token,tradingsymbol,name,expiry,strike,lot_size,exchange\n1,A,A,,0,1,NSE\n")
        }
        #expect(throws: SymbolMasterError("Kite instruments file is empty")) { try ZerodhaInstrumentMaster.parse(csv: "") }
    }

    static let angelJSON = #"""
        [{"token":"2885","symbol":"RELIANCE-EQ","name":"RELIANCE","expiry":"","strike":"-1.000000","lotsize":"1","instrumenttype":"","exch_seg":"NSE","tick_size":"10.000000"},
         {"token":"99926000","symbol":"Nifty 50","name":"NIFTY","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"NSE","tick_size":"0.000000"},
         {"token":"99926009","symbol":"Nifty Bank","name":"NIFTY BANK","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"NSE","tick_size":"0.000000"},
         {"token":"99919000","symbol":"SENSEX","name":"S&P BSE SENSEX","expiry":"","strike":"0.000000","lotsize":"1","instrumenttype":"AMXIDX","exch_seg":"BSE","tick_size":"0.000000"},
         {"token":"35001","symbol":"NIFTY26DEC2425000CE","name":"NIFTY","expiry":"26DEC2024","strike":"2500000.000000","lotsize":"75","instrumenttype":"OPTIDX","exch_seg":"NFO","tick_size":"5.000000"},
         {"token":"35002","symbol":"NIFTY26DEC24FUT","name":"NIFTY","expiry":"26DEC2024","strike":"-1.000000","lotsize":"75","instrumenttype":"FUTIDX","exch_seg":"NFO","tick_size":"10.000000"},
         {"token":"1100","symbol":"SENSEX2412075000PE","name":"SENSEX","expiry":"06DEC2024","strike":"7500000.000000","lotsize":"20","instrumenttype":"OPTIDX","exch_seg":"BFO","tick_size":"5.000000"},
         {"token":"1101","symbol":"SENSEX24DECFUT","name":"SENSEX","expiry":"27DEC2024","strike":"-1.000000","lotsize":"20","instrumenttype":"FUTIDX","exch_seg":"BFO","tick_size":"5.000000"},
         {"token":"4242","symbol":"GOLD25FEBFUT","name":"GOLD","expiry":"05FEB2025","strike":"-1.000000","lotsize":"1","instrumenttype":"FUTCOM","exch_seg":"MCX","tick_size":"100.000000"},
         {"token":"1203","symbol":"USDINR24DEC83.25CE","name":"USDINR","expiry":"27DEC2024","strike":"832500000.000000","lotsize":"1","instrumenttype":"OPTCUR","exch_seg":"CDS","tick_size":"0.250000"},
         {"token":"1300","symbol":"M\u0026M-EQ","name":"M\"M","expiry":"","strike":"-1.000000","lotsize":1,"instrumenttype":null,"exch_seg":"NSE","tick_size":"5.000000"},
         {"token":"9","symbol":"WHATEVER","name":"X","expiry":"","strike":"0","lotsize":"1","instrumenttype":"","exch_seg":"XYZ","tick_size":"0"}]
        """#

    @Test("SmartAPI's scrip master strips series, renames indices and rebuilds BFO, MCX and CDS contracts")
    func angel() throws {
        let master = try AngelOneScripMaster.parse(json: Self.angelJSON)
        #expect(master.count == 11)
        let reliance = try #require(master.entry(for: Instrument(exchange: "NSE", symbol: "RELIANCE")))
        #expect(reliance.brokerSymbol == "RELIANCE-EQ")
        #expect(reliance.feedSegment == 1)
        #expect(master.entry(feedSegment: 1, token: "2885")?.instrument == Instrument(exchange: "NSE", symbol: "RELIANCE"))
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"))?.token == "99926000")
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "BANKNIFTY"))?.token == "99926009")
        #expect(master.entry(for: Instrument(exchange: "BSE_INDEX", symbol: "BSESENSEX"))?.feedSegment == 3)
        let option = try #require(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC2425000CE")))
        #expect(option.instrumentType == "CE")
        #expect(option.feedSegment == 2)
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC24FUT"))?.instrumentType == "FUT")
        #expect(master.entry(for: Instrument(exchange: "BFO", symbol: "SENSEX06DEC2475000PE"))?.token == "1100")
        #expect(master.entry(for: Instrument(exchange: "BFO", symbol: "SENSEX27DEC24FUT"))?.feedSegment == 4)
        #expect(master.entry(for: Instrument(exchange: "MCX", symbol: "GOLD05FEB25FUT"))?.feedSegment == 5)
        #expect(master.entry(for: Instrument(exchange: "CDS", symbol: "USDINR27DEC2483.25CE"))?.feedSegment == 13)
        #expect(master.entry(for: Instrument(exchange: "NSE", symbol: "M&M"))?.lotSize == 1)
        #expect(master.entry(feedSegment: 1, token: "9") == nil)
    }

    @Test("a scrip master that is not an array of flat objects is refused with the byte offset")
    func angelInvalid() {
        #expect(throws: SymbolMasterError("SmartAPI scrip master is not valid JSON at byte 0: expected '['")) {
            try AngelOneScripMaster.parse(json: "{}")
        }
        #expect(
            throws: SymbolMasterError("SmartAPI scrip master is not valid JSON at byte 10: nested values are not expected in a scrip-master record")
        ) {
            try AngelOneScripMaster.parse(json: #"[{"token":[1]}]"#)
        }
        #expect(throws: SymbolMasterError("SmartAPI scrip master is not valid JSON at byte 13: unterminated string")) {
            try AngelOneScripMaster.parse(json: #"[{"token":"12"#)
        }
        #expect((try? AngelOneScripMaster.parse(json: " [ ] "))?.count == 0)
    }

    static let dhanCSV = """
        SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,SM_SYMBOL_NAME
        NSE,E,2885,EQUITY,,RELIANCE,1.0,Reliance Industries,,-0.01000,XX,10.0000,NA,ES,EQ,RELIANCE INDUSTRIES LTD
        NSE,I,13,INDEX,,NIFTY,1.0,Nifty 50,,-0.01000,XX,0.0000,NA,INDEX,NA,NIFTY
        NSE,I,442,INDEX,,NIFTY NEXT 50,1.0,Nifty Next 50,,-0.01000,XX,0.0000,NA,INDEX,NA,NIFTY NEXT 50
        NSE,I,999,INDEX,,Nifty Pharma Sub,1.0,Nifty Pharma Sub,,-0.01000,XX,0.0000,NA,INDEX,NA,X
        BSE,I,51,INDEX,,SENSEX,1.0,Sensex,,-0.01000,XX,0.0000,NA,INDEX,NA,SENSEX
        BSE,I,69,INDEX,,BSE IT,1.0,BSE IT,,-0.01000,XX,0.0000,NA,INDEX,NA,BSE IT
        NSE,D,35000,FUTIDX,0,NIFTY-Dec2024-FUT,75.0,NIFTY DEC FUT,2024-12-26 14:30:00,-0.01000,XX,5.0000,M,FUTIDX,NA,
        NSE,D,35001,OPTIDX,0,NIFTY-Dec2024-25000-CE,75.0,NIFTY 26 DEC 25000 CALL,2024-12-26 14:30:00,25000.00000,CE,5.0000,W,OP,NA,
        NSE,D,35002,OPTSTK,0,BAJAJ-AUTO-Dec2024-9000-PE,75.0,BAJAJ-AUTO DEC 9000 PUT,2024-12-26 14:30:00,9000.00000,PE,5.0000,M,OP,NA,
        MCX,M,4242,FUTCOM,0,GOLD-Feb2025-FUT,1.0,GOLD FEB FUT,2025-02-05 23:30:00,-0.01000,XX,100.0000,M,FUTCOM,NA,GOLD
        NSE,C,8000,FUTCUR,0,USDINR-Dec2024-FUT,1.0,USDINR DEC FUT,2024-12-27 12:00:00,-0.01000,XX,0.2500,M,FUTCUR,NA,USDINR
        BSE,D,1100,OPTIDX,0,SENSEX-Dec2024-75000-PE,20.0,SENSEX 06 DEC 75000 PUT,2024-12-06 15:30:00,75000.00000,PE,5.0000,W,OP,NA,
        NCDEX,D,1,FUTCOM,0,X,1.0,X,,-0.01,XX,1,M,X,NA,X

        """

    @Test("Dhan's scrip master maps segments and rebuilds derivative symbols from the custom symbol")
    func dhan() throws {
        let master = try DhanScripMaster.parse(csv: Self.dhanCSV)
        #expect(master.count == 12)
        let reliance = try #require(master.entry(for: Instrument(exchange: "NSE", symbol: "RELIANCE")))
        #expect(reliance.brokerExchange == "NSE_EQ")
        #expect(reliance.feedSegment == 1)
        #expect(master.entry(feedSegment: 1, token: "2885")?.instrument.symbol == "RELIANCE")
        let nifty = try #require(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "NIFTY")))
        #expect(nifty.brokerExchange == "IDX_I")
        #expect(nifty.feedSegment == 0)
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "NIFTYNXT50"))?.token == "442")
        #expect(master.entry(for: Instrument(exchange: "NSE_INDEX", symbol: "Nifty Pharma Sub"))?.token == "999")
        #expect(master.entry(for: Instrument(exchange: "BSE_INDEX", symbol: "SENSEX"))?.feedSegment == 0)
        #expect(master.entry(for: Instrument(exchange: "BSE_INDEX", symbol: "BSEINFORMATIONTECHNOLOGY"))?.token == "69")
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC24FUT"))?.lotSize == 75)
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "NIFTY26DEC2425000CE"))?.feedSegment == 2)
        #expect(master.entry(for: Instrument(exchange: "NFO", symbol: "BAJAJ-AUTO26DEC249000PE"))?.instrumentType == "PE")
        #expect(master.entry(for: Instrument(exchange: "MCX", symbol: "GOLD05FEB25FUT"))?.brokerExchange == "MCX_COMM")
        #expect(master.entry(for: Instrument(exchange: "CDS", symbol: "USDINR27DEC24FUT"))?.feedSegment == 3)
        #expect(master.entry(for: Instrument(exchange: "BFO", symbol: "SENSEX06DEC2475000PE"))?.feedSegment == 8)
        #expect(master.entry(feedSegment: 0, token: "13")?.instrument == Instrument(exchange: "NSE_INDEX", symbol: "NIFTY"))
        #expect(master.entry(for: Instrument(exchange: "NSE", symbol: "TCS")) == nil)
    }

    @Test("the first row wins when two resolve to the same instrument, and the loser is counted")
    func duplicates() {
        let first = BrokerInstrument(
            instrument: Instrument(exchange: "NSE", symbol: "X"),
            token: "1",
            brokerExchange: "NSE",
            feedSegment: 1,
            brokerSymbol: "X-EQ",
            instrumentType: "EQ",
            lotSize: 1
        )
        var second = first
        second.token = "2"
        let master = SymbolMaster([first, second])
        #expect(master.count == 1)
        #expect(master.duplicateCount == 1)
        #expect(master.entry(for: first.instrument)?.token == "1")
        #expect(master.entry(feedSegment: 1, token: "2")?.token == "1")
    }

    @Test("expiry and strike spellings match OpenAlgo's")
    func contractNaming() {
        #expect(ContractNaming.expiry(isoDate: "2024-12-26") == "26DEC24")
        #expect(ContractNaming.expiry(isoDate: "2025-02-05 23:30:00") == "05FEB25")
        #expect(ContractNaming.expiry(isoDate: "-1") == nil)
        #expect(ContractNaming.expiry(isoDate: "2025-13-05") == nil)
        #expect(ContractNaming.expiry(dayMonthYear: "26dec2024") == "26DEC24")
        #expect(ContractNaming.expiry(dayMonthYear: "26XYZ2024") == nil)
        #expect(ContractNaming.strike(25000) == "25000")
        #expect(ContractNaming.strike(187.5) == "187.5")
        #expect(ContractNaming.count("75.0") == 75)
        #expect(ContractNaming.count("1e300") == 0)
    }
}
