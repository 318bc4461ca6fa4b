// `switchyard kube`: follow a Kubernetes cluster (Sources/SwitchyardKubeSource/Source).

import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SwitchyardController
import SwitchyardCore
import SwitchyardKube
import SwitchyardKubeSource
import SwitchyardRedis

struct KubeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kube",
        abstract: "Follow a Kubernetes cluster: Ingresses, Services, endpoints and PhysicalEndpoints become routes and upstreams.",
        discussion: """
            Connects with --kubeconfig (its current context or --context), else in-cluster (service account) when \
            KUBERNETES_SERVICE_HOST is set, else $KUBECONFIG or ~/.kube/config. Run two for availability: a Lease \
            makes one active. Certificate keys are encrypted with $SWITCHYARD_CERT_KEY, as the controller does.
            """
    )

    @Option(help: "kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config).")
    var kubeconfig: String?

    @Option(help: "kubeconfig context (default: its current context).")
    var context: String?

    @Option(help: "Watch this namespace only (default: all).")
    var namespace: String?

    @Option(help: "The ingress class served; also this installation's identity (owner k8s/<class>).")
    var ingressClass = "switchyard"

    @Option(help: "spec.controller of the IngressClasses served.")
    var controllerClass = KubeTranslationOptions.defaultControllerName

    @Flag(help: "Also serve Ingresses that name no class.")
    var watchIngressWithoutClass = false

    @Option(help: "namespace/service answering requests no route matches (its first port); default: the edge's 404.")
    var defaultBackend: String?

    @Option(help: "An IP or host name written into the status of served Ingresses; repeatable.")
    var publishAddress: [String] = []

    @Option(help: "API group of the PhysicalEndpoint custom resource.")
    var physicalEndpointGroup = "test.api.io"

    @Option(help: "API version of the PhysicalEndpoint custom resource.")
    var physicalEndpointVersion = "v1beta1"

    @Option(help: "Milliseconds a burst of cluster changes may settle before one write.")
    var debounceMs = 30

    @Option(help: "Seconds between refreshes of PhysicalEndpoint status (endpoint health).")
    var statusInterval = 5.0

    @Option(help: "This process's name in the lease (default: <hostname>-<pid>).")
    var id: String?

    @Option(help: "Namespace of the lease (default: the kubeconfig's or the pod's namespace).")
    var leaseNamespace: String?

    @Option(help: "Name of the lease (default: switchyard-kube-<ingress class>).")
    var leaseName: String?

    @Option(help: "Lease duration, seconds: a standby takes over this long after the leader stopped renewing.")
    var leaseDuration = 8.0

    @Option(help: "Seconds a leader keeps leading without a successful renewal.")
    var renewDeadline = 6.0

    @Option(help: "Seconds between renewals (and between a standby's attempts).")
    var retryPeriod = 2.0

    @OptionGroup var redis: RedisOptions

    @OptionGroup var durability: RedisDurabilityOptions

    @Option(help: "Path of the Redis Function library (default: redis/switchyard.lua of the installation).")
    var functions: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let defaultBackend, K8sKey.parse(defaultBackend) == nil { throw ValidationError("--default-backend must be namespace/service") }
        if !(0...10_000).contains(debounceMs) { throw ValidationError("--debounce-ms must be 0-10000") }
        if !(leaseDuration > renewDeadline && renewDeadline > retryPeriod && retryPeriod > 0) {
            throw ValidationError("leader election needs --lease-duration > --renew-deadline > --retry-period > 0")
        }
        if statusInterval < 0.1 { throw ValidationError("--status-interval must be at least 0.1") }
        if ingressClass.isEmpty || ingressClass.count > 200 { throw ValidationError("--ingress-class must be 1-200 characters") }
    }

    func run() async throws {
        logging.bootstrap()
        var logger = Logger(label: "switchyard.kube")
        logger.logLevel = logging.level
        let environment = ProcessInfo.processInfo.environment

        let connection: KubeConnection
        do {
            if let kubeconfig {
                connection = try KubeConnection.kubeconfig(path: kubeconfig, context: context)
            } else if let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty {
                connection = try KubeConnection.inCluster(environment: environment)
            } else {
                let path = environment["KUBECONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.kube/config")
                connection = try KubeConnection.kubeconfig(path: path, context: context)
            }
        } catch {
            throw ValidationError("\(error)")
        }

        var redisConfiguration = RedisConfiguration(poolSize: 3, maxReconnectBackoff: .seconds(1), clientName: "switchyard-kube")
        try redis.configure(&redisConfiguration) { environment[$0] }
        durability.configure(&redisConfiguration)
        let library: String
        do {
            library = try Installation.functionLibrary(explicitPath: functions).source
        } catch {
            throw ValidationError("\(error)")
        }
        var cipher: CertificateKeyCipher?
        if let text = environment[CertificateKeyCipher.environmentVariable], !text.isEmpty {
            switch CertificateKeyCipher.parse(text) {
            case .success(let value): cipher = value
            case .failure(let error): throw ValidationError("\(CertificateKeyCipher.environmentVariable): \(error.message)")
            }
        } else {
            logger.warning("SWITCHYARD_CERT_KEY is not set: TLS keys from Secrets are stored in Redis in plaintext")
        }

        var configuration = KubeSourceConfiguration()
        configuration.translation = KubeTranslationOptions(
            ingressClass: ingressClass, controllerName: controllerClass, watchIngressWithoutClass: watchIngressWithoutClass,
            requireIngressClassObject: true, defaultBackend: defaultBackend.flatMap(K8sKey.parse))
        configuration.namespace = namespace
        configuration.publishAddresses = publishAddress
        configuration.physicalEndpointGroup = physicalEndpointGroup
        configuration.physicalEndpointVersion = physicalEndpointVersion
        configuration.debounce = .milliseconds(debounceMs)
        configuration.statusInterval = .milliseconds(Int64(statusInterval * 1000))
        configuration.identity = id ?? ProberCommand.defaultID()
        configuration.leaseNamespace = leaseNamespace ?? connection.namespace
        configuration.leaseName = leaseName ?? "switchyard-kube-\(ingressClass)"
        configuration.leaseDuration = .milliseconds(Int64(leaseDuration * 1000))
        configuration.renewDeadline = .milliseconds(Int64(renewDeadline * 1000))
        configuration.retryPeriod = .milliseconds(Int64(retryPeriod * 1000))

        let client: KubeClient
        do {
            client = try KubeClient(connection: connection, logger: logger)
        } catch {
            throw ValidationError("cannot set up the Kubernetes client: \(error)")
        }
        var redisLogger = logger
        redisLogger[metadataKey: "component"] = "redis"
        let redisClient = RedisClient(configuration: redisConfiguration, logger: redisLogger)
        let store = ConfigStore(redis: redisClient, library: library, logger: logger, keys: try redis.address.keys)
        logger.info(
            "kube source starting",
            metadata: [
                "kube.server": "\(connection.server)", "kube.source": "\(connection.source)", "ingress_class": "\(ingressClass)",
                "namespace": "\(namespace ?? "all")", "identity": "\(configuration.identity)",
                "lease": "\(configuration.leaseNamespace)/\(configuration.leaseName)", "group": "\(redis.address.group)",
            ])
        let service = KubeSourceService(configuration: configuration, client: client, store: store, cipher: cipher, logger: logger)
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        await redisClient.close()
    }
}
