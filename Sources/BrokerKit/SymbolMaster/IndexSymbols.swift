/// OpenAlgo's names for indices whose broker names, upper-cased without spaces and hyphens, differ
/// from OpenAlgo's documented symbols (`NIFTY 50` → `NIFTY`, `SNSX50` → `SENSEX50`).
package enum IndexSymbols {
    /// NSE indices, keyed by the broker name in ``Swift/String/indexSymbolForm()``.
    package static let nse: [String: String] = [
        "NIFTY50": "NIFTY",
        "NIFTYBANK": "BANKNIFTY",
        "NIFTYFINSERVICE": "FINNIFTY",
        "NIFTYNEXT50": "NIFTYNXT50",
        "NIFTYMIDSELECT": "MIDCPNIFTY",
        "NIFTYMIDCAPSELECT": "MIDCPNIFTY",
    ]

    /// Further NSE renames OpenAlgo applies to Dhan's index names only.
    package static let dhanNSE: [String: String] = [
        "NIFTYNEXT50": "NIFTYNXT50",
        "NIFTYMCAP50": "NIFTYMIDCAP50",
        "NIFTYMIDSMALLCAP400": "NIFTYMIDSML400",
        "NIFTYSMALLCAP100": "NIFTYSMLCAP100",
        "NIFTYSMALLCAP250": "NIFTYSMLCAP250",
        "NIFTYSMALLCAP50": "NIFTYSMLCAP50",
        "NIFTY100EQUALWEIGHT": "NIFTY100EQLWGT",
        "NIFTY100LOWVOLATILITY30": "NIFTY100LOWVOL30",
        "NIFTYMID100FREE": "NIFTYMIDCAP100",
    ]

    /// BSE indices, keyed by the broker's short name in ``Swift/String/indexSymbolForm()``.
    package static let bse: [String: String] = [
        "SENSEX": "SENSEX", "BANKEX": "BANKEX", "SNSX50": "SENSEX50", "SENSEX50": "SENSEX50",
        "SNXT50": "BSESENSEXNEXT50", "BSE100": "BSE100", "BSE200": "BSE200", "BSE500": "BSE500",
        "MID150": "BSE150MIDCAPINDEX", "LMI250": "BSE250LARGEMIDCAPINDEX", "MSL400": "BSE400MIDSMALLCAPINDEX",
        "AUTO": "BSEAUTO", "BSECG": "BSECAPITALGOODS", "BSECD": "BSECONSUMERDURABLES", "BSEHC": "BSEHEALTHCARE",
        "BSEIT": "BSEINFORMATIONTECHNOLOGY", "CARBON": "BSECARBONEX", "CARBONEX": "BSECARBONEX", "CPSE": "BSECPSE",
        "DOL100": "BSEDOLLEX100", "DOL200": "BSEDOLLEX200", "DOL30": "BSEDOLLEX30", "ENERGY": "BSEENERGY",
        "BSEFMC": "BSEFASTMOVINGCONSUMERGOODS", "FMC": "BSEFASTMOVINGCONSUMERGOODS", "FINSER": "BSEFINANCIALSERVICES",
        "FIN": "BSEFINANCIALSERVICES", "GREENX": "BSEGREENEX", "GREENEX": "BSEGREENEX",
        "INFRA": "BSEINDIAINFRASTRUCTUREINDEX", "INDSTR": "BSEINDUSTRIALS", "BSEIPO": "BSEIPO", "IPO": "BSEIPO",
        "LRGCAP": "BSELARGECAP", "METAL": "BSEMETAL", "MIDCAP": "BSEMIDCAP", "MIDSEL": "BSEMIDCAPSELECTINDEX",
        "OILGAS": "BSEOIL&GAS", "POWER": "BSEPOWER", "BSEPSU": "BSEPSU", "PSU": "BSEPSU", "REALTY": "BSEREALTY",
        "SMLCAP": "BSESMALLCAP", "SMLSEL": "BSESMALLCAPSELECTINDEX", "SMEIPO": "BSESMEIPO", "TECK": "BSETECK",
        "TELCOM": "BSETELECOM",
    ]

    /// An NSE index name as OpenAlgo spells it.
    package static func nseSymbol(_ brokerName: String) -> String {
        let form = brokerName.indexSymbolForm()
        return self.nse[form] ?? form
    }

    /// A BSE index short name as OpenAlgo spells it; unknown names get the `BSE` prefix OpenAlgo's
    /// other BSE indices carry.
    package static func bseSymbol(_ brokerName: String) -> String {
        let form = brokerName.indexSymbolForm()
        if let symbol = self.bse[form] { return symbol }
        return form.hasPrefix("BSE") ? form : "BSE" + form
    }
}
