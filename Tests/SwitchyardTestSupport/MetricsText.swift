// Reads the Prometheus text format well enough for tests: the value of one sample by name
// and labels. (The end-to-end tests use a real parser, PyPI prometheus-client.)

/// One sample line: `name{label="value",...} number`.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

public enum MetricsText {
    /// Every sample of `text` (comments skipped).
    public static func samples(_ text: String) -> [MetricSample] {
        text.split(separator: "\n").compactMap { line -> MetricSample? in
            if line.hasPrefix("#") || line.isEmpty { return nil }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return MetricSample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            var rest = series[series.index(after: brace)...].dropLast()  // without the closing brace
            while let eq = rest.firstIndex(of: "=") {
                let key = String(rest[..<eq]).trimmingPrefix(",")
                var i = rest.index(eq, offsetBy: 2)  // past ="
                var text = ""
                while i < rest.endIndex, rest[i] != "\"" {
                    if rest[i] == "\\", rest.index(after: i) < rest.endIndex {
                        i = rest.index(after: i)
                        text.append(rest[i] == "n" ? "\n" : rest[i])
                    } else {
                        text.append(rest[i])
                    }
                    i = rest.index(after: i)
                }
                labels[String(key)] = text
                rest = i < rest.endIndex ? rest[rest.index(after: i)...] : rest[rest.endIndex...]
            }
            return MetricSample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    /// The value of the sample named `name` whose labels include `labels`; nil if none.
    public static func value(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples(text).first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }
}
