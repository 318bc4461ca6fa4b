import Testing

@testable import SwitchyardCore

@Suite("JSON")
struct JSONTests {
    @Test func parsesAllValueKinds() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null, "x\"\u00e9\n"], "b": {}} "#)
        #expect(value["a"] == .array([.integer(1), .integer(-2), .number("3.5"), .number("1e3"), true, false, .null, .string("x\"é\n")]))
        #expect(value["b"] == .object([]))
    }

    @Test func keepsMemberOrderAndRejectsDuplicateKeys() throws {
        guard case .object(let members) = try JSONValue.parse(#"{"z":1,"a":2}"#) else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["z", "a"])
        #expect(throws: JSONParseError.self) { try JSONValue.parse(#"{"a":1,"a":2}"#) }
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "01", "1.", "\"\u{01}\"", "tru", "{} x", "\"\\ud800\"", "[\"\\q\"]", "{'a':1}"])
    func rejectsInvalidText(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) {
            try JSONValue.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100))
        }
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
    }

    @Test func canonicalEncodingSortsKeysAndIsStable() throws {
        let a = try JSONValue.parse(#"{"b":1,"a":{"y":[1,2],"x":"/p"},"A":null}"#)
        let b = try JSONValue.parse(#"{ "A" : null, "a" : { "x" : "/p", "y" : [ 1, 2 ] }, "b" : 1 }"#)
        #expect(a.canonical == #"{"A":null,"a":{"x":"/p","y":[1,2]},"b":1}"#)
        #expect(a.canonical == b.canonical)
        #expect(try JSONValue.parse(a.canonical).canonical == a.canonical)
    }

    @Test func canonicalEncodingEscapesOnlyWhatItMust() {
        let value: JSONValue = ["s": .string("a\"b\\c\n\t\u{01}é/")]
        #expect(value.canonical == #"{"s":"a\"b\\c\n\t\u0001é/"}"#)
    }
}
