// Exponential backoff with jitter, as a value. Every delay is at least `initial * (1 - jitter)`,
// so a loop that waits for it is never a busy loop; none is longer than `maximum`.

public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// The fraction of each delay that is random (0: none, 1: anywhere from 0 to the delay).
    public var jitter: Double
    public private(set) var attempt = 0

    public init(
        initial: Duration = .milliseconds(200), maximum: Duration = .seconds(30), multiplier: Double = 2,
        jitter: Double = 0.5
    ) {
        precondition(initial > .zero && maximum >= initial && multiplier >= 1 && (0..<1).contains(jitter))
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The next delay; each call without a reset grows the base delay up to the maximum.
    public mutating func next<R: RandomNumberGenerator>(using rng: inout R) -> Duration {
        let base = min(Self.seconds(initial) * Double.pow(multiplier, attempt), Self.seconds(maximum))
        attempt = min(attempt + 1, 64)
        let random = Double.random(in: 0..<1, using: &rng)
        let seconds = base * (1 - jitter) + base * jitter * random
        return .nanoseconds(Int64((seconds * 1_000_000_000).rounded()))
    }

    public mutating func next() -> Duration {
        var rng = SystemRandomNumberGenerator()
        return next(using: &rng)
    }

    /// After a success: the next failure waits the initial delay again.
    public mutating func reset() { attempt = 0 }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

extension Double {
    static func pow(_ base: Double, _ exponent: Int) -> Double {
        var result = 1.0
        for _ in 0..<min(exponent, 64) {
            result *= base
            if result > 1e12 { break }
        }
        return result
    }
}
