// Writes health transitions to Redis: whenever the board has work, it takes the
// difference between what the engine decided and what Redis holds and sends it as
// `sy_health` calls of at most `batchSize` operations (one version bump and one pub/sub
// message per change, done by the Function). A call refused with not_leader pauses
// writing and tells the lease keeper; a Redis error puts the work back and retries with
// backoff. On graceful shutdown it makes one last attempt, before the lease is released.

import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardRedis

struct HealthWriter: Service, CustomStringConvertible {
    var description: String { "HealthWriter" }

    let redis: RedisClient
    let board: HealthBoard
    let signals: LeaseSignals
    let library: FunctionLibrary
    let proberID: String
    let logger: Logger
    /// The group whose health keys it writes (`--group`).
    var keys: KeySchema = .default
    var batchSize = 1000

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            for await _ in board.changes {
                await drain(failures: &failures, retry: true)
            }
        }
        var failures = 0
        await drain(failures: &failures, retry: false)
    }

    /// Writes until the board has nothing left (or, with `retry` false, after one failure).
    func drain(failures: inout Int, retry: Bool) async {
        while !Task.isCancelled || !retry {
            let (epoch, operations) = board.withLedger { $0.take(limit: batchSize) }
            if operations.isEmpty { return }
            var start = 0
            while start < operations.count {
                let chunk = Array(operations[start..<min(start + batchSize, operations.count)])
                do throws(ProberError) {
                    let reply = try await library.call(redis, HealthCall.health(prober: proberID, chunk, keys: keys))
                    board.withLedger { $0.commit(chunk, epoch: epoch) }
                    start += chunk.count
                    if failures > 0 { logger.info("health writes resumed") }
                    failures = 0
                    logger.debug(
                        "health written",
                        metadata: [
                            "health.operations": "\(chunk.count)", "health.version": "\(reply.array?.first?.integer ?? -1)",
                        ])
                } catch {
                    let rest = Array(operations[start...])
                    board.withLedger { $0.requeue(rest, epoch: epoch) }
                    if error.code == .notLeader {
                        logger.warning("health write refused: this prober does not hold the lease")
                        board.withLedger { $0.pause() }
                        signals.writeRefused()
                        return
                    }
                    failures += 1
                    logger.log(
                        level: failures == 1 ? .warning : .debug, "health write failed; will retry",
                        metadata: [
                            "error": "\(error.message)", "redis.failures": "\(failures)",
                        ])
                    if !retry { return }
                    let delay = Backoff(initial: .milliseconds(100), maximum: .seconds(2)).delay(afterFailures: failures)
                    try? await Task.sleep(for: delay)
                    break
                }
            }
        }
    }
}
