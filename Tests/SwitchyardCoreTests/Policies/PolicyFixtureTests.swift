import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardCore

/// Tests/Fixtures/policy-documents.json is the agreement between the controller and the
/// edge (lua/switchyard/doc.lua specs) on traffic-policy documents: the controller must
/// accept and store every valid document byte for byte, and refuse every invalid one
/// naming exactly the fixture's field.
@Suite("Traffic-policy fixture shared with the edge")
struct PolicyFixtureTests {
    struct Case: CustomTestStringConvertible {
        var doc: JSONValue
        var field: String
        var why: String
        var testDescription: String { "\(field): \(why)" }
    }

    static func fixture() throws -> JSONValue {
        let url = repositoryRoot().appendingPathComponent("Tests/Fixtures/policy-documents.json")
        return try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    static func valid(_ kind: String) -> [JSONValue] {
        guard case .array(let items)? = (try? fixture())?[kind]?["valid"] else { return [] }
        return items
    }

    static func invalid(_ kind: String) -> [Case] {
        guard case .array(let items)? = (try? fixture())?[kind]?["invalid"] else { return [] }
        return items.map { item in
            guard let doc = item["doc"], case .string(let field)? = item["field"], case .string(let why)? = item["why"] else {
                return Case(doc: .null, field: "<malformed fixture entry>", why: "")
            }
            return Case(doc: doc, field: field, why: why)
        }
    }

    let validator = Validator()

    @Test func fixtureIsComplete() throws {
        // a silently empty or truncated fixture would make the parameterized tests vacuous
        #expect(Self.valid("routes").count >= 20)
        #expect(Self.invalid("routes").count >= 25)
        #expect(Self.valid("upstreams").count >= 8)
        #expect(Self.invalid("upstreams").count >= 10)
        // every route option and upstream member appears in some valid document
        let routeKeys = Set(
            Self.valid("routes").flatMap { doc -> [String] in
                if case .object(let members) = doc { return members.map(\.key) } else { return [] }
            })
        #expect(RoutePolicies.fields.isSubset(of: routeKeys), "missing: \(RoutePolicies.fields.subtracting(routeKeys))")
        let balances = Set(
            Self.valid("upstreams").compactMap { doc -> String? in
                if case .string(let b)? = doc["balance"] { return b } else { return nil }
            })
        #expect(balances == Set(Balance.allCases.map(\.rawValue)))
    }

    @Test(arguments: valid("routes"))
    func validRouteIsStoredExactly(_ doc: JSONValue) throws {
        let route = try validator.route(doc, id: nil).get()
        #expect(route.canonicalDocument == doc.canonical)
        // and a stored copy decodes back to the same route
        #expect(try Route(document: doc, regex: PCRE2RegexChecker()) == route)
    }

    @Test(arguments: invalid("routes"))
    func invalidRouteIsRefusedAtTheField(_ c: Case) throws {
        guard case .failure(let failure) = validator.route(c.doc, id: nil) else {
            Issue.record("accepted: \(c.doc.canonical)")
            return
        }
        #expect(failure.problems.map(\.field) == [c.field], "\(failure.problems)")
        // a stored copy (typed in by hand) is refused too
        #expect(throws: DocumentError.self) { try Route(document: c.doc, regex: PCRE2RegexChecker()) }
    }

    @Test(arguments: valid("upstreams"))
    func validUpstreamIsStoredExactly(_ doc: JSONValue) throws {
        let upstream = try validator.upstream(doc, name: nil).get()
        #expect(upstream.canonicalDocument == doc.canonical)
        #expect(try Upstream(document: doc) == upstream)
    }

    @Test(arguments: invalid("upstreams"))
    func invalidUpstreamIsRefusedAtTheField(_ c: Case) throws {
        guard case .failure(let failure) = validator.upstream(c.doc, name: nil) else {
            Issue.record("accepted: \(c.doc.canonical)")
            return
        }
        #expect(failure.problems.map(\.field) == [c.field], "\(failure.problems)")
        #expect(throws: DocumentError.self) { try Upstream(document: c.doc) }
    }
}
