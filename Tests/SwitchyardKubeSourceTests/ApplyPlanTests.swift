import SwitchyardCore
import SwitchyardKubeSource
import Testing

@Suite("switchyard apply: the plan")
struct ApplyPlanTests {
    func desired(_ hosts: [String: String], installation: String = "switchyard") -> KubeDesired {
        var state = ClusterState()
        state.insert(.service(K8sService(meta: K8sMeta(namespace: "default", name: "svc"), ports: [K8sServicePort(port: 80)])))
        for (name, host) in hosts {
            var ingress = K8sIngress(meta: K8sMeta(namespace: "default", name: name))
            let at = "spec.rules[0].http.paths[0]"
            ingress.rules = [
                K8sIngressRule(
                    host: host,
                    paths: [
                        K8sIngressPath(
                            path: "/", pathType: .exact, backend: K8sBackend(service: "svc", port: .number(80), field: at), field: at)
                    ],
                    field: "spec.rules[0]")
            ]
            state.insert(.ingress(ingress))
        }
        var options = KubeTranslationOptions(ingressClass: installation, watchIngressWithoutClass: true, requireIngressClassObject: false)
        options.ingressClass = installation
        var cache = KubeCertificateCache()
        return KubeLowering(now: 0).lower(KubeTranslator(options: options).translate(state), cache: &cache)
    }

    func controller(_ d: KubeDesired) -> ControllerObjects {
        var objects = ControllerObjects()
        for r in d.routes { objects.routes[r.id] = r }
        for u in d.upstreams { objects.upstreams[u.name] = u }
        return objects
    }

    func origins(_ names: [String], services: [String] = ["svc"]) -> Set<String> {
        Set(
            names.map { KubeIdentity.originHash(installation: "switchyard", origin: K8sRef("Ingress", "default", $0)) }
                + services.map { KubeIdentity.originHash(installation: "switchyard", origin: K8sRef("Service", "default", $0)) })
    }

    @Test func firstApplyCreatesSecondPlansNothing() {
        let d = desired(["a": "a.example", "b": "b.example"])
        let first = ApplyPlan(desired: d, current: ControllerObjects(), origins: origins(["a", "b"]))
        #expect(first.items.map(\.action) == [.create, .create, .create])
        #expect(first.items.map(\.kind) == [.upstream, .route, .route])
        #expect(first.hasBatch)
        let second = ApplyPlan(desired: d, current: controller(d), origins: origins(["a", "b"]))
        #expect(second.isEmpty)
        #expect(!second.hasBatch)
    }

    @Test func changedAndVanishedObjectsOfTheFilesOnly() {
        let before = desired(["a": "a.example", "b": "b.example"])
        var current = controller(before)
        // someone else's route, and one from an Ingress not in these files: never deleted
        current.routes["hand-made"] = Route(id: "hand-made", host: "x.example", path: "/", upstream: before.upstreams[0].name)
        let other = desired(["c": "c.example"])
        for r in other.routes { current.routes[r.id] = r }

        // a's host changed (a new route: the host is part of the id), b gone, and the stored
        // copy of c's route edited by hand (c is not in the files: left alone)
        current.routes[other.routes[0].id]?.priority = 5
        let after = desired(["a": "a.example.org"])
        let plan = ApplyPlan(desired: after, current: current, origins: origins(["a", "b"]))
        let oldA = before.routes.first { $0.host == "a.example" }!.id
        let routeB = before.routes.first { $0.host == "b.example" }!.id
        #expect(
            plan.items.filter { $0.kind == .route }.map { "\($0.action) \($0.id)" }.sorted()
                == ["create \(after.routes[0].id)", "delete \(oldA)", "delete \(routeB)"].sorted())
        #expect(plan.deleteRoutes == [oldA, routeB].sorted())
        #expect(plan.deleteUpstreams == [])  // still used
        #expect(plan.batch["delete"]?["routes"] == .array([oldA, routeB].sorted().map { .string($0) }))
    }

    @Test func aStoredCopyThatDiffersIsChanged() {
        let d = desired(["a": "a.example"])
        var current = controller(d)
        current.routes[d.routes[0].id]?.priority = 7
        let plan = ApplyPlan(desired: d, current: current, origins: origins(["a"]))
        #expect(plan.items.map { "\($0.action) \($0.kind)" } == ["change route"])
        #expect(plan.putRoutes == d.routes)
    }

    @Test func anUnusedUpstreamOfTheFilesIsDeleted() {
        let before = desired(["a": "a.example"])
        let plan = ApplyPlan(desired: desired([:]), current: controller(before), origins: origins(["a"]))
        #expect(plan.deleteRoutes.count == 1)
        #expect(plan.deleteUpstreams == before.upstreams.map(\.name))
    }
}
