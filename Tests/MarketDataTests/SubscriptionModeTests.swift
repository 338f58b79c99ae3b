import MarketData
import Testing

@Suite("Subscription modes")
struct SubscriptionModeTests {
    @Test("integers 1-3 and labels in any case, trimmed")
    func valid() throws {
        #expect(try SubscriptionMode(validating: 1) == .ltp)
        #expect(try SubscriptionMode(validating: 3) == .depth)
        for label in ["ltp", "LTP", " Quote ", "QUOTE", "dEpTh\n"] {
            #expect(SubscriptionMode(label: label) != nil, "\(label)")
        }
        #expect(SubscriptionMode.quote.label == "Quote")
        #expect(SubscriptionMode.ltp < .depth)
    }

    @Test("the reference's error texts")
    func invalid() {
        #expect(throws: InvalidModeError(message: "Invalid mode 0; expected 1 (LTP), 2 (Quote), or 3 (Depth)")) {
            try SubscriptionMode(validating: 0)
        }
        #expect(throws: InvalidModeError(message: "Invalid mode 259; expected 1 (LTP), 2 (Quote), or 3 (Depth)")) {
            try SubscriptionMode(validating: 259)
        }
        #expect(throws: InvalidModeError(message: "Invalid mode 'full'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)")) {
            try SubscriptionMode(validatingLabel: "full", repr: "'full'")
        }
    }
}
