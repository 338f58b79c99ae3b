extension Int64 {
    /// `value` rounded towards zero and clamped to `Int64`'s range, NaN as zero. `Int64(_:)` traps
    /// on a value out of range, and values computed from input (a speed, a timeout in seconds) can
    /// be anything.
    package init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self.init(value)
        }
    }
}
