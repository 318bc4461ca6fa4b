// The `switchyard` executable: `switchyard controller` runs the admin API;
// `switchyard edge` renders the nginx configuration of an edge and execs nginx;
// `switchyard prober` runs the active health checker; `switchyard kube` follows a Kubernetes
// cluster and `switchyard apply` writes Switchyard documents or translated Kubernetes manifests; `switchyard reseed`
// is the operator's step after Redis lost its data; `switchyard token` makes admin API tokens;
// get, apply, diff, delete, history, revert and explain are the admin API's client.

import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A dynamic ingress: a controller writes routes to Redis, nginx edges follow.",
        subcommands: [
            ControllerCommand.self, EdgeCommand.self, ProberCommand.self, KubeCommand.self, ApplyCommand.self,
            ReseedCommand.self, TokenCommand.self, GetCommand.self, DiffCommand.self, DeleteCommand.self, HistoryCommand.self,
            RevertCommand.self, ExplainCommand.self, StreamCommand.self,
        ]
    )

    static func main() async {
        // Runs on the main thread before the first suspension. A parent may have started us
        // with termination signals blocked (children of Dispatch worker threads inherit a
        // full mask); then SIGTERM would never reach the graceful-shutdown handler.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        await main(nil)
    }
}
