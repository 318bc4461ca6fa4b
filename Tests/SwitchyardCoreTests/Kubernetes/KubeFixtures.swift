// Builders for cluster objects in the translation's tests, and a reference matcher that
// routes a request over translated routes with the edge's rules (k8s-model.md: host entry
// lookup order, exact, longest prefix/segment_prefix, regex), so the conformance tables can
// say which backend a request reaches.

import Foundation

@testable import SwitchyardCore

enum Kube {
    static func meta(
        _ name: String, ns: String = "default", created: String = "", annotations: [String: String] = [:], labels: [String: String] = [:]
    )
        -> K8sMeta
    {
        K8sMeta(namespace: ns, name: name, creationTimestamp: created, annotations: annotations, labels: labels)
    }

    struct P {
        var path: String
        var type: K8sPathType
        var service: String
        var port: K8sPort
        init(_ path: String, _ type: K8sPathType = .prefix, _ service: String, _ port: Int = 80) {
            self.path = path
            self.type = type
            self.service = service
            self.port = .number(port)
        }
        init(_ path: String, _ type: K8sPathType = .prefix, _ service: String, portName: String) {
            self.path = path
            self.type = type
            self.service = service
            self.port = .name(portName)
        }
    }

    static func ingress(
        _ name: String, ns: String = "default", created: String = "", className: String? = "switchyard",
        annotations: [String: String] = [:],
        rules: [(String?, [P])] = [], defaultBackend: (String, Int)? = nil, tls: [(hosts: [String], secret: String?)] = []
    ) -> K8sIngress {
        var out = K8sIngress(meta: meta(name, ns: ns, created: created, annotations: annotations), className: className)
        for (i, (host, paths)) in rules.enumerated() {
            out.rules.append(
                K8sIngressRule(
                    host: host,
                    paths: paths.enumerated().map { j, p in
                        let at = "spec.rules[\(i)].http.paths[\(j)]"
                        return K8sIngressPath(
                            path: p.path, pathType: p.type, backend: K8sBackend(service: p.service, port: p.port, field: "\(at).backend"),
                            field: at)
                    }, field: "spec.rules[\(i)]"))
        }
        if let (service, port) = defaultBackend {
            out.defaultBackend = K8sBackend(service: service, port: .number(port), field: "spec.defaultBackend")
        }
        out.tls = tls.enumerated().map { K8sIngressTLS(hosts: $1.hosts, secretName: $1.secret, field: "spec.tls[\($0)]") }
        return out
    }

    static func service(
        _ name: String, ns: String = "default", ports: [K8sServicePort] = [K8sServicePort(port: 80, targetPort: .number(8080))],
        selector: Bool = true, type: String = "ClusterIP", annotations: [String: String] = [:]
    ) -> K8sService {
        K8sService(meta: meta(name, ns: ns, annotations: annotations), type: type, hasSelector: selector, ports: ports)
    }

    static func slice(
        _ name: String, service: String, ns: String = "default", type: String = "IPv4",
        ports: [K8sEndpointPort] = [K8sEndpointPort(port: 8080)],
        _ endpoints: [K8sSliceEndpoint]
    ) -> K8sEndpointSlice {
        K8sEndpointSlice(
            meta: meta(name, ns: ns, labels: [K8sEndpointSlice.serviceNameLabel: service]), addressType: type, endpoints: endpoints,
            ports: ports)
    }

    static func ready(_ ips: String...) -> K8sSliceEndpoint { K8sSliceEndpoint(addresses: ips, ready: true) }

    static func ingressClass(
        _ name: String = "switchyard", controller: String = KubeTranslationOptions.defaultControllerName, isDefault: Bool = false
    )
        -> K8sIngressClass
    {
        K8sIngressClass(
            meta: meta(name, ns: "", annotations: isDefault ? [K8sIngressClass.defaultClassAnnotation: "true"] : [:]),
            controller: controller)
    }

    /// A cluster with the switchyard IngressClass and these objects.
    static func state(_ objects: [K8sObject], withClass: Bool = true) -> ClusterState {
        var state = ClusterState()
        if withClass { state.insert(.ingressClass(ingressClass())) }
        for object in objects { state.insert(object) }
        return state
    }

    /// Translates with the default options (class switchyard) unless given.
    static func translate(_ objects: [K8sObject], options: KubeTranslationOptions = KubeTranslationOptions()) -> KubeTranslation {
        KubeTranslator(options: options).translate(state(objects))
    }

    static func json(_ text: String) -> JSONValue {
        do { return try JSONValue.parse(text) } catch { fatalError("bad JSON in a test: \(error)") }
    }
}

extension JSONValue {
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var int: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    var items: [JSONValue] { if case .array(let a) = self { return a } else { return [] } }
}

extension KubeTranslation {
    /// Route drafts for `host` with `path` (as stored), any match kind.
    func routes(host: String, path: String) -> [KubeRouteDraft] { routes.filter { $0.host == host && $0.path == path } }

    /// The Service (namespace/name) an upstream id comes from.
    func service(ofUpstream id: String?) -> String? {
        guard let id, let draft = upstream(id) else { return nil }
        return draft.origin.key.description
    }

    /// Addresses of an upstream's endpoints.
    func addresses(_ id: String?) -> [String] {
        guard let id, let draft = upstream(id) else { return [] }
        return (draft.document["endpoints"]?.items ?? []).compactMap { $0["address"]?.string }
    }
}

/// The edge's matching rules over translated routes (k8s-model.md), to run conformance tables
/// against the translation without an edge.
struct ReferenceRouter {
    var routes: [KubeRouteDraft]

    func entry(_ key: String, oneLabel: Bool) -> [KubeRouteDraft] {
        routes.filter { $0.host == key && ($0.document["wildcard"]?.string == "one_label") == oneLabel }
    }

    func match(host: String, path: String) -> KubeRouteDraft? {
        var candidates: [[KubeRouteDraft]] = [entry(host, oneLabel: false)]
        let labels = host.split(separator: ".").map(String.init)
        for i in 1..<max(labels.count, 1) {
            let suffix = "*." + labels[i...].joined(separator: ".")
            if i == 1 { candidates.append(entry(suffix, oneLabel: true)) }
            candidates.append(entry(suffix, oneLabel: false))
        }
        candidates.append(entry("*", oneLabel: false))
        guard let routes = candidates.first(where: { !$0.isEmpty }) else { return nil }
        func better(_ a: KubeRouteDraft, _ b: KubeRouteDraft) -> Bool {
            let pa = a.document["priority"]?.int ?? 0
            let pb = b.document["priority"]?.int ?? 0
            return pa != pb ? pa > pb : a.id < b.id
        }
        if let exact = routes.filter({ $0.match == "exact" && $0.path == path }).sorted(by: better).first { return exact }
        let prefixes = routes.filter { r in
            guard let p = r.path else { return false }
            switch r.match {
            case "prefix": return path.hasPrefix(p)
            case "segment_prefix": return p == "/" || path == p || path.hasPrefix(p + "/")
            default: return false
            }
        }
        if let longest = prefixes.map({ $0.path!.count }).max() {
            return prefixes.filter { $0.path!.count == longest }.sorted(by: better).first
        }
        for r in routes.filter({ $0.match == "regex" }).sorted(by: better) {
            var pattern = r.path!
            var options: NSRegularExpression.Options = []
            if pattern.hasPrefix("(?i)") {
                pattern.removeFirst(4)
                options.insert(.caseInsensitive)
            }
            let regex = try! NSRegularExpression(pattern: pattern, options: options)
            if regex.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil { return r }
        }
        return nil
    }

    /// The Service (namespace/name) that serves the request, or nil (404).
    func service(host: String, path: String, in translation: KubeTranslation) -> String? {
        translation.service(ofUpstream: match(host: host, path: path)?.upstream)
    }
}
