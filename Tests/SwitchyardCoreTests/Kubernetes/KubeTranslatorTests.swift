import Testing

@testable import SwitchyardCore

@Suite("Kubernetes translation: routes, ids, classes, conflicts")
struct KubeTranslatorTests {
    typealias P = Kube.P

    @Test func routeDocumentCarriesTheContractFields() {
        let ingress = Kube.ingress(
            "web", rules: [("*.apps.example", [P("/api/", .prefix, "api")]), (nil, [P("/health", .exact, "api")])])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("api"))])
        #expect(t.problems == [])
        let wildcard = t.routes(host: "*.apps.example", path: "/api").first
        #expect(wildcard?.document["wildcard"]?.string == "one_label")
        #expect(wildcard?.match == "segment_prefix")
        #expect(wildcard?.document["priority"]?.int == 0)
        let catchAll = t.routes(host: "*", path: "/health").first
        #expect(catchAll?.match == "exact")
        #expect(catchAll?.document["wildcard"] == nil)
        #expect(wildcard?.upstream == catchAll?.upstream)
        #expect(t.upstreams.count == 1)
        #expect(t.ingresses == [K8sKey("default", "web")])
        // the request form: no owner or source in the document (the writer stamps them)
        #expect(wildcard?.document["owner"] == nil && wildcard?.document["source"] == nil)
        #expect(wildcard?.origin == K8sRef("Ingress", "default", "web"))
    }

    @Test func idsAreDeterministicAndStableUnderReordering() {
        let paths = [P("/a", .prefix, "svc"), P("/b", .exact, "svc"), P("/c", .implementationSpecific, "svc")]
        let one = Kube.translate([.ingress(Kube.ingress("x", rules: [("h.example", paths)])), .service(Kube.service("svc"))])
        let two = Kube.translate([.ingress(Kube.ingress("x", rules: [("h.example", paths.reversed())])), .service(Kube.service("svc"))])
        #expect(one.routes.map(\.id) == two.routes.map(\.id))
        #expect(one.routes.map(\.document) == two.routes.map(\.document))
        #expect(Set(one.routes.map(\.id)).count == 3)
        for id in one.routes.map(\.id) + one.upstreams.map(\.id) {
            #expect(Names.isValid(id), "\(id)")
            #expect(id.hasPrefix("default-x.") || id.hasPrefix("default-svc-80."))
        }
        // another installation (ingress class) never writes the same ids
        let other = KubeTranslator(options: KubeTranslationOptions(ingressClass: "other")).translate(
            Kube.state(
                [
                    .ingressClass(Kube.ingressClass("other")),
                    .ingress(Kube.ingress("x", className: "other", rules: [("h.example", paths)])),
                    .service(Kube.service("svc")),
                ]))
        #expect(other.routes.count == 3)
        #expect(Set(other.routes.map(\.id)).isDisjoint(with: one.routes.map(\.id)))
        #expect(Set(other.upstreams.map(\.id)).isDisjoint(with: one.upstreams.map(\.id)))
    }

    @Test func longNamesAreCutToFit() {
        let name = String(repeating: "very-long-name-", count: 12) + "end"
        let t = Kube.translate([
            .ingress(Kube.ingress(name, ns: "a-namespace", rules: [("h.example", [P("/", .prefix, name)])])),
            .service(Kube.service(name, ns: "a-namespace")),
        ])
        #expect(t.routes.count == 1)
        for id in t.routes.map(\.id) + t.upstreams.map(\.id) {
            #expect(Names.isValid(id), "\(id)")
            #expect(KubeIdentity.originHash(of: id) != nil)
        }
        #expect(
            KubeIdentity.originHash(of: t.routes[0].id)
                == KubeIdentity.originHash(installation: "switchyard", origin: K8sRef("Ingress", "a-namespace", name)))
    }

    @Test func invalidHostSkipsThatRuleOnly() {
        let ingress = Kube.ingress("bad", rules: [("bad_host!", [P("/", .prefix, "svc")]), ("good.example", [P("/", .prefix, "svc")])])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc"))])
        #expect(t.routes.map(\.host) == ["good.example"])
        #expect(t.problems.map(\.field) == ["spec.rules[0].host"])
        #expect(t.problems.first?.severity == .error)
        #expect(t.problems.first?.object == K8sRef("Ingress", "default", "bad"))
    }

    @Test func olderIngressWinsAConflict() {
        let older = Kube.ingress("older", created: "2024-01-01T00:00:00Z", rules: [("h.example", [P("/api", .prefix, "old")])])
        let newer = Kube.ingress(
            "newer", ns: "aaa", created: "2025-01-01T00:00:00Z",
            rules: [("h.example", [P("/api/", .prefix, "new"), P("/other", .prefix, "new")])])
        let t = Kube.translate([.ingress(newer), .ingress(older), .service(Kube.service("old")), .service(Kube.service("new", ns: "aaa"))])
        let router = ReferenceRouter(routes: t.routes)
        #expect(router.service(host: "h.example", path: "/api/x", in: t) == "default/old")
        #expect(router.service(host: "h.example", path: "/other", in: t) == "aaa/new")
        #expect(t.problems.count == 1)
        #expect(t.problems.first?.object == K8sRef("Ingress", "aaa", "newer"))
        #expect(t.problems.first?.field == "spec.rules[0].http.paths[0]")
        #expect(t.problems.first?.reason == "Conflict")
        #expect(t.problems.first?.message.contains("Ingress default/older") == true)
    }

    @Test func duplicatePathInOneIngressIsReported() {
        let ingress = Kube.ingress("dup", rules: [("h.example", [P("/a", .exact, "one"), P("/a", .exact, "two")])])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("one")), .service(Kube.service("two"))])
        #expect(t.routes.count == 1)
        #expect(t.service(ofUpstream: t.routes.first?.upstream) == "default/one")
        #expect(t.problems.map(\.field) == ["spec.rules[0].http.paths[1]"])
    }

    @Test func controllerDefaultBackendFillsEveryHostAndTheCatchAll() {
        var options = KubeTranslationOptions()
        options.defaultBackend = K8sKey("kube-system", "default-http-backend")
        let ingress = Kube.ingress("app", rules: [("app.example", [P("/api", .prefix, "api")])])
        let ownDefault = Kube.ingress("own", rules: [("own.example", [P("/x", .prefix, "api")])], defaultBackend: ("own-default", 80))
        let t = Kube.translate(
            [
                .ingress(ingress), .ingress(ownDefault), .service(Kube.service("api")), .service(Kube.service("own-default")),
                .service(Kube.service("default-http-backend", ns: "kube-system")),
            ], options: options)
        #expect(t.problems == [])
        let router = ReferenceRouter(routes: t.routes)
        #expect(router.service(host: "app.example", path: "/api", in: t) == "default/api")
        #expect(router.service(host: "app.example", path: "/nothing", in: t) == "kube-system/default-http-backend")
        #expect(router.service(host: "unknown.example", path: "/", in: t) == "kube-system/default-http-backend")
        // an Ingress's own default backend wins for its hosts
        #expect(router.service(host: "own.example", path: "/y", in: t) == "default/own-default")
        #expect(router.service(host: "own.example", path: "/x", in: t) == "default/api")
    }

    @Test func missingDefaultBackendServiceIsReported() {
        var options = KubeTranslationOptions()
        options.defaultBackend = K8sKey("kube-system", "nope")
        let t = Kube.translate([], options: options)
        #expect(t.routes.isEmpty)
        #expect(t.problems.map(\.object) == [K8sRef("Service", "kube-system", "nope")])
    }

    @Test(arguments: [
        // (legacy annotation, ingressClassName, class object controller, class is default, without-class flag, served)
        (String?.none, String?.some("switchyard"), "switchyard.io/ingress-controller", false, false, true),
        (nil, "switchyard", "k8s.io/ingress-nginx", false, false, false),  // the name is another controller's class
        (nil, "nginx", "switchyard.io/ingress-controller", false, false, false),
        (nil, nil, "switchyard.io/ingress-controller", false, false, false),  // no class: ignored
        (nil, nil, "switchyard.io/ingress-controller", false, true, true),  // --watch-ingress-without-class
        (nil, nil, "switchyard.io/ingress-controller", true, false, true),  // our class is the default class
        ("switchyard", nil, "switchyard.io/ingress-controller", false, false, true),  // legacy annotation
        ("nginx", "switchyard", "switchyard.io/ingress-controller", false, false, false),  // the annotation wins
    ])
    func classSelection(legacy: String?, className: String?, controller: String, isDefault: Bool, withoutClass: Bool, served: Bool) {
        let annotations = legacy.map { [KubeTranslationOptions.legacyClassAnnotation: $0] } ?? [:]
        let ingress = Kube.ingress("i", className: className, annotations: annotations, rules: [("h.example", [P("/", .prefix, "svc")])])
        var state = Kube.state([.ingress(ingress), .service(Kube.service("svc"))], withClass: false)
        state.insert(.ingressClass(Kube.ingressClass(controller: controller, isDefault: isDefault)))
        let t = KubeTranslator(options: KubeTranslationOptions(watchIngressWithoutClass: withoutClass)).translate(state)
        #expect(t.routes.count == (served ? 1 : 0))
        #expect(t.ingresses == (served ? [K8sKey("default", "i")] : []))
    }

    @Test func offlineApplyNeedsNoIngressClassObject() {
        let ingress = Kube.ingress("i", rules: [("h.example", [P("/", .prefix, "svc")])])
        let state = Kube.state([.ingress(ingress), .service(Kube.service("svc"))], withClass: false)
        #expect(KubeTranslator().translate(state).routes.isEmpty)
        #expect(KubeTranslator(options: KubeTranslationOptions(requireIngressClassObject: false)).translate(state).routes.count == 1)
    }

    @Test func missingServiceOrPortSkipsThatPathOnly() {
        let ingress = Kube.ingress(
            "refs",
            rules: [
                (
                    "h.example",
                    [
                        P("/missing", .prefix, "ghost"), P("/badport", .prefix, "svc", 81), P("/byname", .prefix, "svc", portName: "nope"),
                        P("/ok", .prefix, "svc"),
                    ]
                )
            ])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc"))])
        #expect(t.routes.map(\.path) == ["/ok"])
        #expect(
            t.problems.map(\.field) == [
                "spec.rules[0].http.paths[0].backend.service.name", "spec.rules[0].http.paths[1].backend.service.port",
                "spec.rules[0].http.paths[2].backend.service.port",
            ])
        #expect(t.problems.map(\.reason) == ["MissingService", "MissingPort", "MissingPort"])
        #expect(t.problems.allSatisfy { $0.severity == .error })
    }

    @Test func externalNameIsRefusedWithAReason() {
        let ingress = Kube.ingress("ext", rules: [("h.example", [P("/", .prefix, "ext")])])
        let service = Kube.service("ext", type: "ExternalName")
        let t = Kube.translate([.ingress(ingress), .service(service)])
        #expect(t.routes.isEmpty)
        #expect(t.problems.first?.reason == "UnsupportedService")
        #expect(t.problems.first?.message.contains("ExternalName") == true)
    }

    @Test func pathsNotStartingWithSlashAreRefused() {
        let ingress = Kube.ingress("p", rules: [("h.example", [P("api", .implementationSpecific, "svc"), P("/ok", .exact, "svc")])])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc"))])
        #expect(t.routes.map(\.path) == ["/ok"])
        #expect(t.problems.map(\.field) == ["spec.rules[0].http.paths[0].path"])
    }

    @Test func translationIsDeterministic() {
        let objects: [K8sObject] = [
            .ingress(Kube.ingress("a", rules: [("a.example", [P("/", .prefix, "svc")])], tls: [(["a.example"], "tls")])),
            .ingress(Kube.ingress("b", rules: [("b.example", [P("/", .prefix, "svc"), P("/x", .prefix, "ghost")])])),
            .service(Kube.service("svc")),
        ]
        let first = Kube.translate(objects)
        for _ in 0..<5 { #expect(Kube.translate(objects.shuffled()) == first) }
    }
}
