// Cluster objects from JSON: a watched object (the `switchyard kube` role) or one document of
// a YAML file (`switchyard apply`), with the same rules, so the two cannot disagree. Every
// problem names the field as written (`spec.rules[0].http.paths[1].pathType`); an object
// with any problem is skipped whole (the API server refuses such objects, so in a cluster
// this only meets hand-written files). Fields the translation does not read are ignored, as
// kubectl's own decoding of unknown fields is not ours to repeat.
//
// Ingress: networking.k8s.io/v1, and for files the retired networking.k8s.io/v1beta1 and
// extensions/v1beta1 (`serviceName`/`servicePort`, `spec.backend`; a path without pathType
// is ImplementationSpecific, as the v1beta1 API defaulted it).

public struct KubeObjectParser: Sendable {
    /// apiVersion of the PhysicalEndpoint custom resource.
    public var physicalEndpointAPIVersion: String
    /// Namespace of namespaced objects that name none (kubectl's default).
    public var defaultNamespace: String

    public init(physicalEndpointAPIVersion: String = "test.api.io/v1beta1", defaultNamespace: String = "default") {
        self.physicalEndpointAPIVersion = physicalEndpointAPIVersion
        self.defaultNamespace = defaultNamespace
    }

    public enum Outcome: Sendable, Hashable {
        case object(K8sObject)
        /// A kind (or a Secret type) the translation does not read; `reason` says which.
        case ignored(K8sRef?, reason: String)
        /// Every problem found; the object is skipped.
        case invalid(K8sRef?, [KubeProblem])
    }

    public static let ingressVersions = ["networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"]

    public func parse(_ json: JSONValue) -> Outcome {
        guard case .object = json else {
            return .invalid(
                nil, [KubeProblem(.error, K8sRef("?", "", ""), field: "", "must be an object, not \(json.typeName)", reason: "Invalid")])
        }
        var reader = KubeFieldReader(ref: K8sRef("?", "", ""))
        let apiVersion = reader.string(json, "apiVersion", at: "", required: true) ?? ""
        let kind = reader.string(json, "kind", at: "", required: true) ?? "?"
        let metadata = json["metadata"] ?? .object([])
        let name = reader.string(metadata, "name", at: "metadata", required: true) ?? ""
        let namespaced = kind != "IngressClass" && kind != "Namespace"
        let namespace = namespaced ? (reader.string(metadata, "namespace", at: "metadata", required: false) ?? defaultNamespace) : ""
        reader.ref = K8sRef(kind, namespace, name)
        let ref = reader.ref
        if !reader.problems.isEmpty { return .invalid(ref, reader.problems) }

        func versions(_ allowed: [String]) -> Bool {
            if allowed.contains(apiVersion) { return true }
            reader.add(
                "apiVersion", "\(kind) '\(apiVersion)' is not read by switchyard (expected \(allowed.joined(separator: " or ")))",
                reason: "UnsupportedVersion")
            return false
        }
        var meta = self.meta(metadata, namespace: namespace, name: name, into: &reader)
        meta.namespace = namespace
        let object: K8sObject?
        switch kind {
        case "Ingress":
            object = versions(Self.ingressVersions) ? .ingress(ingress(json, meta: meta, apiVersion: apiVersion, into: &reader)) : nil
        case "IngressClass":
            object =
                versions(["networking.k8s.io/v1", "networking.k8s.io/v1beta1"])
                ? .ingressClass(
                    K8sIngressClass(
                        meta: meta, controller: reader.string(json["spec"] ?? .object([]), "controller", at: "spec", required: false) ?? "")
                )
                : nil
        case "Service":
            object = versions(["v1"]) ? .service(service(json, meta: meta, into: &reader)) : nil
        case "EndpointSlice":
            object =
                versions(["discovery.k8s.io/v1", "discovery.k8s.io/v1beta1"]) ? .endpointSlice(slice(json, meta: meta, into: &reader)) : nil
        case "Endpoints":
            object = versions(["v1"]) ? .endpoints(endpoints(json, meta: meta, into: &reader)) : nil
        case "Secret":
            guard versions(["v1"]) else { return .invalid(ref, reader.problems) }
            let type = reader.string(json, "type", at: "", required: false) ?? "Opaque"
            guard type == K8sTLSSecret.type else { return .ignored(ref, reason: "a Secret of type \(type), not \(K8sTLSSecret.type)") }
            object = .secret(secret(json, meta: meta, into: &reader))
        case "PhysicalEndpoint":
            object = versions([physicalEndpointAPIVersion]) ? .physicalEndpoint(physical(json, meta: meta, into: &reader)) : nil
        default:
            return .ignored(
                ref,
                reason: "kind \(kind) is not read by switchyard (it reads Ingress, IngressClass, Service, Endpoints, EndpointSlice, "
                    + "Secret of type \(K8sTLSSecret.type) and PhysicalEndpoint)")
        }
        guard let object, reader.problems.isEmpty else { return .invalid(ref, reader.problems) }
        return .object(object)
    }

    // MARK: - Kinds

    func meta(_ json: JSONValue, namespace: String, name: String, into reader: inout KubeFieldReader) -> K8sMeta {
        K8sMeta(
            namespace: namespace, name: name,
            uid: reader.string(json, "uid", at: "metadata", required: false),
            resourceVersion: reader.string(json, "resourceVersion", at: "metadata", required: false),
            creationTimestamp: reader.string(json, "creationTimestamp", at: "metadata", required: false) ?? "",
            annotations: reader.stringMap(json, "annotations", at: "metadata"),
            labels: reader.stringMap(json, "labels", at: "metadata"))
    }

    func ingress(_ json: JSONValue, meta: K8sMeta, apiVersion: String, into reader: inout KubeFieldReader) -> K8sIngress {
        let v1 = apiVersion == "networking.k8s.io/v1"
        let spec = json["spec"] ?? .object([])
        var ingress = K8sIngress(meta: meta, apiVersion: apiVersion)
        ingress.className = reader.string(spec, "ingressClassName", at: "spec", required: false)
        let defaultKey = v1 ? "defaultBackend" : "backend"
        if let backend = json["spec"]?[defaultKey], backend != .null {
            ingress.defaultBackend = self.backend(backend, v1: v1, at: "spec.\(defaultKey)", into: &reader)
        }
        for (i, rule) in reader.array(spec, "rules", at: "spec").enumerated() {
            let at = "spec.rules[\(i)]"
            var host = reader.string(rule, "host", at: at, required: false)
            if host == "" { host = nil }
            var paths: [K8sIngressPath] = []
            if let http = rule["http"], http != .null {
                let httpAt = "\(at).http"
                let items = reader.array(http, "paths", at: httpAt)
                if items.isEmpty, http["paths"] == nil { reader.add("\(httpAt).paths", "is required", reason: "InvalidIngress") }
                for (j, item) in items.enumerated() {
                    let pathAt = "\(httpAt).paths[\(j)]"
                    var pathType = K8sPathType.implementationSpecific
                    if let text = reader.string(item, "pathType", at: pathAt, required: v1) {
                        if let t = K8sPathType(rawValue: text) {
                            pathType = t
                        } else {
                            reader.add(
                                "\(pathAt).pathType", "'\(text)' is not a path type (Exact, Prefix or ImplementationSpecific)",
                                reason: "InvalidPath")
                        }
                    }
                    var path = reader.string(item, "path", at: pathAt, required: false) ?? ""
                    if path.isEmpty {
                        if pathType != .implementationSpecific {
                            reader.add("\(pathAt).path", "is required with pathType \(pathType.rawValue)", reason: "InvalidPath")
                        }
                        path = "/"
                    }
                    guard let backendJSON = item["backend"], backendJSON != .null else {
                        reader.add("\(pathAt).backend", "is required", reason: "InvalidIngress")
                        continue
                    }
                    if let backend = backend(backendJSON, v1: v1, at: "\(pathAt).backend", into: &reader) {
                        paths.append(K8sIngressPath(path: path, pathType: pathType, backend: backend, field: pathAt))
                    }
                }
            }
            ingress.rules.append(K8sIngressRule(host: host, paths: paths, field: at))
        }
        for (i, entry) in reader.array(spec, "tls", at: "spec").enumerated() {
            let at = "spec.tls[\(i)]"
            let hosts = reader.array(entry, "hosts", at: at).enumerated().compactMap { j, h -> String? in
                if case .string(let s) = h { return s }
                reader.add("\(at).hosts[\(j)]", "must be a string, not \(h.typeName)", reason: "InvalidIngress")
                return nil
            }
            ingress.tls.append(
                K8sIngressTLS(hosts: hosts, secretName: reader.string(entry, "secretName", at: at, required: false), field: at))
        }
        if ingress.rules.isEmpty && ingress.defaultBackend == nil {
            reader.add("spec", "an Ingress needs rules or a \(defaultKey)", reason: "InvalidIngress")
        }
        return ingress
    }

    /// v1: `{service: {name, port: {number | name}}}` (or `resource`, which switchyard
    /// cannot serve); v1beta1: `{serviceName, servicePort}`.
    func backend(_ json: JSONValue, v1: Bool, at: String, into reader: inout KubeFieldReader) -> K8sBackend? {
        guard case .object = json else {
            reader.add(at, "must be an object, not \(json.typeName)", reason: "InvalidIngress")
            return nil
        }
        if !v1 {
            guard let name = reader.string(json, "serviceName", at: at, required: true) else { return nil }
            guard let port = reader.intOrString(json, "servicePort", at: at, required: true) else { return nil }
            return K8sBackend(service: name, port: port, field: at)
        }
        if json["resource"] != nil, json["service"] == nil {
            reader.add(
                "\(at).resource", "resource backends are not supported (switchyard sends requests to Services)",
                reason: "UnsupportedBackend")
            return nil
        }
        guard let service = json["service"], service != .null else {
            reader.add("\(at).service", "is required", reason: "InvalidIngress")
            return nil
        }
        let serviceAt = "\(at).service"
        let name = reader.string(service, "name", at: serviceAt, required: true)
        guard let portJSON = service["port"], portJSON != .null else {
            reader.add("\(serviceAt).port", "is required (number or name)", reason: "InvalidIngress")
            return nil
        }
        let portAt = "\(serviceAt).port"
        let number = reader.int(portJSON, "number", at: portAt, required: false)
        let portName = reader.string(portJSON, "name", at: portAt, required: false)
        var port: K8sPort?
        switch (number, portName) {
        case (let n?, nil): port = .number(n)
        case (nil, let s?) where !s.isEmpty: port = .name(s)
        case (.some, .some): reader.add(portAt, "give number or name, not both", reason: "InvalidIngress")
        default: reader.add(portAt, "needs number or name", reason: "InvalidIngress")
        }
        if let n = number, !(1...65535).contains(n) { reader.add("\(portAt).number", "must be 1-65535", reason: "InvalidIngress") }
        guard let name, let port else { return nil }
        return K8sBackend(service: name, port: port, field: at)
    }

    func service(_ json: JSONValue, meta: K8sMeta, into reader: inout KubeFieldReader) -> K8sService {
        let spec = json["spec"] ?? .object([])
        let type = reader.string(spec, "type", at: "spec", required: false) ?? "ClusterIP"
        var hasSelector = false
        if case .object(let members)? = spec["selector"], !members.isEmpty { hasSelector = true }
        var ports: [K8sServicePort] = []
        for (i, item) in reader.array(spec, "ports", at: "spec").enumerated() {
            let at = "spec.ports[\(i)]"
            let name = reader.string(item, "name", at: at, required: false) ?? ""
            guard let port = reader.int(item, "port", at: at, required: true) else { continue }
            if !(1...65535).contains(port) { reader.add("\(at).port", "must be 1-65535", reason: "InvalidService") }
            let target = reader.intOrString(item, "targetPort", at: at, required: false)
            ports.append(
                K8sServicePort(
                    name: name, port: port, targetPort: target, proto: reader.string(item, "protocol", at: at, required: false) ?? "TCP"))
        }
        return K8sService(
            meta: meta, type: type, hasSelector: hasSelector, ports: ports,
            externalName: reader.string(spec, "externalName", at: "spec", required: false))
    }

    func slice(_ json: JSONValue, meta: K8sMeta, into reader: inout KubeFieldReader) -> K8sEndpointSlice {
        let addressType = reader.string(json, "addressType", at: "", required: true) ?? ""
        var endpoints: [K8sSliceEndpoint] = []
        for (i, item) in reader.array(json, "endpoints", at: "").enumerated() {
            let at = "endpoints[\(i)]"
            let addresses = reader.stringArray(item, "addresses", at: at)
            let conditions = item["conditions"] ?? .object([])
            endpoints.append(
                K8sSliceEndpoint(
                    addresses: addresses, ready: reader.bool(conditions, "ready", at: "\(at).conditions"),
                    terminating: reader.bool(conditions, "terminating", at: "\(at).conditions")))
        }
        return K8sEndpointSlice(
            meta: meta, addressType: addressType, endpoints: endpoints, ports: endpointPorts(json, at: "", into: &reader))
    }

    func endpointPorts(_ json: JSONValue, at prefix: String, into reader: inout KubeFieldReader) -> [K8sEndpointPort] {
        reader.array(json, "ports", at: prefix).enumerated().map { i, item in
            let at = prefix.isEmpty ? "ports[\(i)]" : "\(prefix).ports[\(i)]"
            return K8sEndpointPort(
                name: reader.string(item, "name", at: at, required: false) ?? "", port: reader.int(item, "port", at: at, required: false))
        }
    }

    func endpoints(_ json: JSONValue, meta: K8sMeta, into reader: inout KubeFieldReader) -> K8sEndpoints {
        var subsets: [K8sEndpointSubset] = []
        for (i, item) in reader.array(json, "subsets", at: "").enumerated() {
            let at = "subsets[\(i)]"
            func ips(_ key: String) -> [String] {
                reader.array(item, key, at: at).enumerated().compactMap { j, address in
                    reader.string(address, "ip", at: "\(at).\(key)[\(j)]", required: true)
                }
            }
            subsets.append(
                K8sEndpointSubset(
                    addresses: ips("addresses"), notReadyAddresses: ips("notReadyAddresses"),
                    ports: endpointPorts(item, at: at, into: &reader)))
        }
        return K8sEndpoints(meta: meta, subsets: subsets)
    }

    func secret(_ json: JSONValue, meta: K8sMeta, into reader: inout KubeFieldReader) -> K8sTLSSecret {
        // `data` is base64 (what the API serves); `stringData` is plain text (files only:
        // the API server folds it into data)
        func value(_ key: String) -> String? {
            if let text = reader.string(json["stringData"] ?? .object([]), key, at: "stringData", required: false) { return text }
            guard let encoded = reader.string(json["data"] ?? .object([]), key, at: "data", required: false) else { return nil }
            guard let bytes = Base64.decode(encoded), let text = String(validating: bytes, as: UTF8.self) else {
                reader.add("data.\(key)", "is not base64 of PEM text", reason: "InvalidSecret")
                return nil
            }
            return text
        }
        return K8sTLSSecret(meta: meta, certificate: value("tls.crt"), key: value("tls.key"))
    }

    func physical(_ json: JSONValue, meta: K8sMeta, into reader: inout KubeFieldReader) -> K8sPhysicalEndpoint {
        let spec = json["spec"] ?? .object([])
        let endpoints = reader.stringArray(spec, "endpoints", at: "spec")
        let detect = reader.string(spec, "http_detect", at: "spec", required: false)
        let interval = reader.int(spec, "interval", at: "spec", required: false)
        return K8sPhysicalEndpoint(meta: meta, endpoints: endpoints, httpDetect: detect, interval: interval)
    }
}

/// Reads typed members and collects problems naming the field, for one object.
struct KubeFieldReader {
    var ref: K8sRef
    var problems: [KubeProblem] = []

    init(ref: K8sRef) { self.ref = ref }

    mutating func add(_ field: String, _ message: String, reason: String) {
        problems.append(KubeProblem(.error, ref, field: field, message, reason: reason))
    }

    static func field(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : "\(prefix).\(key)" }

    mutating func string(_ json: JSONValue, _ key: String, at prefix: String, required: Bool) -> String? {
        switch json[key] {
        case .string(let s)?: return s
        case nil, .null?:
            if required { add(Self.field(prefix, key), "is required", reason: "Invalid") }
        case let other?:
            add(Self.field(prefix, key), "must be a string, not \(other.typeName)", reason: "Invalid")
        }
        return nil
    }

    mutating func int(_ json: JSONValue, _ key: String, at prefix: String, required: Bool) -> Int? {
        switch json[key] {
        case .integer(let v)?:
            if let i = Int(exactly: v) { return i }
            add(Self.field(prefix, key), "is out of range", reason: "Invalid")
        case nil, .null?:
            if required { add(Self.field(prefix, key), "is required", reason: "Invalid") }
        case let other?:
            add(Self.field(prefix, key), "must be an integer, not \(other.typeName)", reason: "Invalid")
        }
        return nil
    }

    mutating func bool(_ json: JSONValue, _ key: String, at prefix: String) -> Bool? {
        switch json[key] {
        case .bool(let b)?: return b
        case nil, .null?: return nil
        case let other?:
            add(Self.field(prefix, key), "must be true or false, not \(other.typeName)", reason: "Invalid")
            return nil
        }
    }

    /// An IntOrString member (servicePort, targetPort): an integer, or a string that is a
    /// port name (a string of digits counts as the number, as the API server reads it).
    mutating func intOrString(_ json: JSONValue, _ key: String, at prefix: String, required: Bool) -> K8sPort? {
        switch json[key] {
        case .integer(let v)?:
            guard let i = Int(exactly: v), (1...65535).contains(i) else {
                add(Self.field(prefix, key), "must be a port number 1-65535 or a port name", reason: "Invalid")
                return nil
            }
            return .number(i)
        case .string(let s)? where !s.isEmpty:
            if s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let i = Int(s), (1...65535).contains(i) { return .number(i) }
            return .name(s)
        case nil, .null?:
            if required { add(Self.field(prefix, key), "is required", reason: "Invalid") }
            return nil
        case let other?:
            add(Self.field(prefix, key), "must be a port number or name, not \(other.typeName)", reason: "Invalid")
            return nil
        }
    }

    mutating func array(_ json: JSONValue, _ key: String, at prefix: String) -> [JSONValue] {
        switch json[key] {
        case .array(let items)?: return items
        case nil, .null?: return []
        case let other?:
            add(Self.field(prefix, key), "must be a list, not \(other.typeName)", reason: "Invalid")
            return []
        }
    }

    mutating func stringArray(_ json: JSONValue, _ key: String, at prefix: String) -> [String] {
        array(json, key, at: prefix).enumerated().compactMap { i, item in
            if case .string(let s) = item { return s }
            add("\(Self.field(prefix, key))[\(i)]", "must be a string, not \(item.typeName)", reason: "Invalid")
            return nil
        }
    }

    /// labels, annotations: string to string (kubectl refuses a number there: quote it).
    mutating func stringMap(_ json: JSONValue, _ key: String, at prefix: String) -> [String: String] {
        switch json[key] {
        case .object(let members)?:
            var out: [String: String] = [:]
            for (k, v) in members {
                if case .string(let s) = v {
                    out[k] = s
                } else {
                    add("\(Self.field(prefix, key)).\(k)", "must be a string, not \(v.typeName) (quote it in YAML)", reason: "Invalid")
                }
            }
            return out
        case nil, .null?: return [:]
        case let other?:
            add(Self.field(prefix, key), "must be a map of strings, not \(other.typeName)", reason: "Invalid")
            return [:]
        }
    }
}
