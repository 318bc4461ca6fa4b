// Upstreams from Services: which Service port an Ingress backend means, the endpoints behind
// it, and the PhysicalEndpoint machines that join them.
//
// - Endpoints come from the Service's EndpointSlices (label kubernetes.io/service-name):
//   ready ones only (`ready` absent counts as ready, as the API says; terminating ones are
//   not ready and get no new requests), IPv4 and IPv6 slices (FQDN slices are reported and
//   skipped), the slice port matched to the Service port by name, else the Service's numeric
//   targetPort (what ingress-nginx does), duplicates removed. A Service with no slices at all
//   uses its v1 Endpoints (hand-written for Services without a selector, as in the bbs
//   fixture; a cluster mirrors those into slices, a file may not).
// - ExternalName Services are refused with an error on the Ingress: the edges route to IP
//   addresses and never resolve names on the request path, and resolving once here would
//   go stale silently. Use a Service without selector plus Endpoints, or a PhysicalEndpoint.
// - A Service annotated `test.api.io/physical.deployment.endpoints: A[,B]` gets the machines
//   of those PhysicalEndpoints (its namespace) in each of its upstreams (for a Service with
//   several ports: those whose port is the Service port or its target port). The first
//   PhysicalEndpoint with `http_detect` gives the upstream its active health check
//   (`http_detect` path, `interval` seconds); pods are then exempt from it
//   (`health_check: false`): Kubernetes readiness decides for them.

struct KubeUpstreamBuilder {
    let state: ClusterState
    let options: KubeTranslationOptions
    /// Slices by Service (namespace/service name), each Service's in name order.
    let slices: [K8sKey: [K8sEndpointSlice]]
    /// Problems found, each with the key that reports it once per translation (the
    /// translation drops repeats of the same key and problem over all its upstreams).
    var reports: [(key: String, problem: KubeProblem)] = []
    /// PhysicalEndpoints already checked: their valid addresses and health check, or nil.
    var physicalCache: [K8sKey: PhysicalMachines?] = [:]

    struct PhysicalMachines: Equatable {
        var addresses: [EndpointAddress]
        var check: JSONValue?
    }

    init(state: ClusterState, options: KubeTranslationOptions, slices: [K8sKey: [K8sEndpointSlice]]) {
        self.state = state
        self.options = options
        self.slices = slices
    }

    /// The cluster's slices grouped by the Service they belong to, each group in name order:
    /// one pass over the slices and a sort of each (small) group, not of all of them.
    static func slicesByService(_ state: ClusterState) -> [K8sKey: [K8sEndpointSlice]] {
        var out: [K8sKey: [K8sEndpointSlice]] = [:]
        for slice in state.endpointSlices.values {
            guard let service = slice.serviceName else { continue }
            out[K8sKey(slice.meta.namespace, service), default: []].append(slice)
        }
        for (key, group) in out where group.count > 1 { out[key] = group.sorted { $0.meta.key < $1.meta.key } }
        return out
    }

    mutating func report(once key: String, _ problem: KubeProblem) {
        reports.append((key, problem))
    }

    /// The Service and port a backend names, or a problem on `ingress` at the backend's field.
    static func resolve(_ backend: K8sBackend, namespace: String, from ingress: K8sRef, services: [K8sKey: K8sService])
        -> Result<(K8sService, K8sServicePort), KubeProblem>
    {
        let key = K8sKey(namespace, backend.service)
        guard let service = services[key] else {
            return .failure(
                KubeProblem(
                    .error, ingress, field: "\(backend.field).service.name", "Service \(key) does not exist", reason: "MissingService"))
        }
        if service.type == "ExternalName" {
            return .failure(
                KubeProblem(
                    .error, ingress, field: "\(backend.field).service.name",
                    "Service \(key) is of type ExternalName (\(service.externalName ?? "?")), which switchyard does not serve: edges "
                        + "route to IP addresses; use a Service without selector and Endpoints, or a PhysicalEndpoint",
                    reason: "UnsupportedService"))
        }
        let port: K8sServicePort?
        switch backend.port {
        case .number(let n): port = service.ports.first { $0.port == n }
        case .name(let s): port = service.ports.first { $0.name == s }
        }
        guard let port else {
            let known = service.ports.map { $0.name.isEmpty ? "\($0.port)" : "\($0.name)/\($0.port)" }.joined(separator: ", ")
            return .failure(
                KubeProblem(
                    .error, ingress, field: "\(backend.field).service.port",
                    "Service \(key) has no port \(backend.port) (its ports: \(known.isEmpty ? "none" : known))", reason: "MissingPort"))
        }
        return .success((service, port))
    }

    /// The upstream document for one Service port with `policy` (upstream members from
    /// annotations), and the PhysicalEndpoints in it.
    mutating func upstream(id: String, service: K8sService, port: K8sServicePort, policy: JSONValue) -> KubeUpstreamDraft {
        var pods = podAddresses(service: service, port: port)
        var machines: [EndpointAddress] = []
        var check: JSONValue?
        var physical: [K8sKey: [String]] = [:]
        let annotation = annotationField(K8sService.physicalEndpointsAnnotation)
        for name in service.physicalEndpointNames {
            let key = K8sKey(service.meta.namespace, name)
            guard state.physicalEndpoints[key] != nil else {
                report(
                    once: "pe-missing",
                    KubeProblem(
                        .error, service.ref, field: annotation, "PhysicalEndpoint \(key) does not exist; the Service is served without it",
                        reason: "MissingPhysicalEndpoint"))
                continue
            }
            guard let found = physicalMachines(key) else { continue }
            let own = found.addresses.filter { belongs($0, to: port, of: service) }
            if own.isEmpty && service.ports.count > 1 {
                report(
                    once: "pe-ports-\(name)",
                    KubeProblem(
                        .warning, K8sRef("PhysicalEndpoint", key), field: "spec.endpoints",
                        "no endpoint has a port of Service \(service.meta.key) (\(service.ports.map { "\($0.port)" }.joined(separator: ", ")))",
                        reason: "NoMatchingPort"))
            }
            machines += own
            physical[key] = own.map(\.description)
            if let c = found.check {
                if check == nil {
                    check = c
                } else if check != c {
                    report(
                        once: "pe-check",
                        KubeProblem(
                            .warning, service.ref, field: annotation,
                            "PhysicalEndpoint \(key) asks for another health check than the first one named; an upstream has one, the first is used",
                            reason: "ConflictingHealthCheck"))
                }
            }
        }
        let machineSet = Set(machines)
        pods.removeAll { machineSet.contains($0) }
        // sorted by address text, made once per address rather than once per comparison
        // (ties, if two addresses ever printed alike: machines first, then by address)
        var entries: [(text: String, rank: Int, address: EndpointAddress, endpoint: JSONValue)] = []
        for address in machineSet {
            let text = address.description
            entries.append((text, 0, address, ["address": .string(text), "weight": 1]))
        }
        for address in pods {
            // pods: Kubernetes readiness decides; exempt from the machines' active check
            let text = address.description
            let endpoint: JSONValue =
                check == nil ? ["address": .string(text), "weight": 1] : ["address": .string(text), "weight": 1, "health_check": false]
            entries.append((text, 1, address, endpoint))
        }
        entries.sort { a, b in
            if a.text != b.text { return a.text < b.text }
            if a.rank != b.rank { return a.rank < b.rank }
            return a.address < b.address
        }
        let endpoints = entries.map(\.endpoint)
        var members: [(key: String, value: JSONValue)] = [("name", .string(id)), ("endpoints", .array(endpoints))]
        if let check { members.append(("health_check", check)) }
        if case .object(let policyMembers) = policy { members += policyMembers }
        return KubeUpstreamDraft(id: id, origin: service.ref, document: .object(members), physical: physical)
    }

    /// Whether a machine's address belongs to the upstream of `port` (every machine does when
    /// the Service has one port).
    func belongs(_ address: EndpointAddress, to port: K8sServicePort, of service: K8sService) -> Bool {
        if service.ports.count <= 1 { return true }
        if Int(address.port) == port.port { return true }
        if case .number(let n)? = port.targetPort, Int(address.port) == n { return true }
        return false
    }

    /// Ready pod addresses for one Service port, each once (in no particular order).
    mutating func podAddresses(service: K8sService, port: K8sServicePort) -> [EndpointAddress] {
        var out: Set<EndpointAddress> = []
        let key = service.meta.key
        if let slices = slices[key], !slices.isEmpty {
            for slice in slices {
                let ref = K8sRef("EndpointSlice", slice.meta.key)
                guard slice.addressType == "IPv4" || slice.addressType == "IPv6" else {
                    report(
                        once: "slice-type",
                        KubeProblem(
                            .warning, ref, field: "addressType", "\(slice.addressType) slices are not served (only IPv4 and IPv6)",
                            reason: "UnsupportedAddressType"))
                    continue
                }
                guard let number = endpointPort(slice.ports, for: port) else { continue }
                for (i, endpoint) in slice.endpoints.enumerated() where endpoint.ready != false && endpoint.terminating != true {
                    for (j, ip) in endpoint.addresses.enumerated() {
                        if let address = Self.address(ip, number) {
                            out.insert(address)
                        } else {
                            report(
                                once: "slice-ip-\(i)-\(j)",
                                KubeProblem(
                                    .warning, ref, field: "endpoints[\(i)].addresses[\(j)]", "'\(ip)' is not an IP address; skipped",
                                    reason: "InvalidAddress"))
                        }
                    }
                }
            }
        } else if let endpoints = state.endpoints[key] {
            let ref = K8sRef("Endpoints", key)
            for (i, subset) in endpoints.subsets.enumerated() {
                guard let number = endpointPort(subset.ports, for: port) else { continue }
                for (j, ip) in subset.addresses.enumerated() {
                    if let address = Self.address(ip, number) {
                        out.insert(address)
                    } else {
                        report(
                            once: "ep-ip-\(i)-\(j)",
                            KubeProblem(
                                .warning, ref, field: "subsets[\(i)].addresses[\(j)].ip", "'\(ip)' is not an IP address; skipped",
                                reason: "InvalidAddress"))
                    }
                }
            }
        }
        return Array(out)
    }

    /// The endpoint port of a slice or subset for a Service port: the port of the same name,
    /// else the numeric targetPort (or the port itself when there is no targetPort).
    func endpointPort(_ ports: [K8sEndpointPort], for port: K8sServicePort) -> Int? {
        if let named = ports.first(where: { $0.name == port.name }), let n = named.port { return n }
        if ports.count == 1, port.name.isEmpty, let n = ports[0].port { return n }
        switch port.targetPort {
        case .number(let n)?: return n
        case nil: return port.port
        case .name?: return nil
        }
    }

    static func address(_ ip: String, _ port: Int) -> EndpointAddress? {
        let text = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        if case .success(let address) = EndpointAddress.parse(text) { return address }
        return nil
    }

    /// A PhysicalEndpoint's machines and health check; nil (reported once) when malformed.
    mutating func physicalMachines(_ key: K8sKey) -> PhysicalMachines? {
        if let cached = physicalCache[key] { return cached }
        guard let object = state.physicalEndpoints[key] else { return nil }
        var errors: [KubeProblem] = []
        var addresses: [EndpointAddress] = []
        for (i, text) in object.endpoints.enumerated() {
            switch EndpointAddress.parse(text) {
            case .success(let address): addresses.append(address)
            case .failure(let error):
                errors.append(
                    KubeProblem(.error, object.ref, field: "spec.endpoints[\(i)]", "'\(text)': \(error.message)", reason: "InvalidEndpoint")
                )
            }
        }
        if object.endpoints.isEmpty {
            errors.append(
                KubeProblem(.error, object.ref, field: "spec.endpoints", "must list at least one ip:port", reason: "InvalidEndpoint"))
        }
        var check: JSONValue?
        if let path = object.httpDetect {
            if !path.hasPrefix("/") || path.contains(" ") {
                errors.append(
                    KubeProblem(
                        .error, object.ref, field: "spec.http_detect", "'\(path)' must be a path starting with /",
                        reason: "InvalidHealthCheck"))
            }
            let interval = object.interval ?? options.physicalEndpointInterval
            if !(1...3600).contains(interval) {
                errors.append(
                    KubeProblem(.error, object.ref, field: "spec.interval", "must be 1-3600 seconds", reason: "InvalidHealthCheck"))
            }
            check = ["type": "http", "path": .string(path), "interval_ms": .integer(Int64(interval) * 1000)]
        } else if object.interval != nil {
            errors.append(
                KubeProblem(
                    .warning, object.ref, field: "spec.interval", "has no effect without spec.http_detect (no health check)",
                    reason: "NoHealthCheck"))
        }
        let result: PhysicalMachines? =
            errors.contains { $0.severity == .error } ? nil : PhysicalMachines(addresses: addresses, check: check)
        for error in errors { report(once: "pe", error) }
        physicalCache[key] = .some(result)
        return result
    }
}
