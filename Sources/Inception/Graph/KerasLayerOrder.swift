/// The order in which Keras lists a functional model's layers (and so assigns
/// weights from a weights-only file): by decreasing depth, where the output
/// has depth 0 and a layer's depth is one more than its deepest reader's;
/// ties keep the order of a depth-first walk from the output.
package enum KerasLayerOrder {
    package static func sorted(_ specs: [LayerSpec], output: String) -> [LayerSpec] {
        let byName = Dictionary(specs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var walk: [String] = []
        var seen = Set<String>()
        // Iterative post-order walk (the graph can be deep).
        var stack: [(name: String, next: Int)] = [(output, 0)]
        seen.insert(output)
        while let top = stack.last {
            let inputs = byName[top.name]?.inputs ?? []
            if top.next < inputs.count {
                stack[stack.count - 1].next += 1
                let input = inputs[top.next]
                if seen.insert(input).inserted { stack.append((input, 0)) }
            } else {
                walk.append(top.name)
                stack.removeLast()
            }
        }
        var depth = [output: 0]
        for name in walk.reversed() {
            let d = depth[name, default: 0]
            for input in byName[name]?.inputs ?? [] { depth[input] = max(depth[input] ?? 0, d + 1) }
        }
        let position = Dictionary(uniqueKeysWithValues: walk.enumerated().map { ($1, $0) })
        return walk
            .sorted { (depth[$0]!, position[$1]!) > (depth[$1]!, position[$0]!) }
            .compactMap { byName[$0] }
    }
}
