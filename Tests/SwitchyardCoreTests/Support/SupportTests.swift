import Testing

@testable import SwitchyardCore

@Suite("Small helpers")
struct SupportTests {
    @Test func iso8601Formatting() {
        #expect(iso8601(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(iso8601(milliseconds: 1_700_000_000_123) == "2023-11-14T22:13:20.123Z")
        #expect(iso8601(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00.000Z")
        #expect(iso8601(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }
}
