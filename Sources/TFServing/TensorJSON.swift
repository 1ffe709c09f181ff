import Foundation
import Jobs

/// Tensors in TF Serving's REST JSON: nested lists in row-major order, a
/// scalar for rank 0, and binary strings as `{"b64": "<base64>"}`.
public enum TensorJSON {
    /// Decodes `value` into a tensor of `dtype`; `input` names the tensor in
    /// error messages.
    public static func decode(_ value: JSONValue, as dtype: Tensor.DataType,
                              input: String) throws(TFServingError) -> Tensor {
        var shape: [Int] = []
        var leaves: [JSONValue] = []
        try flatten(value, depth: 0, shape: &shape, leaves: &leaves, input: input)
        switch dtype {
        case .string:
            var strings: [[UInt8]] = []
            strings.reserveCapacity(leaves.count)
            for leaf in leaves { strings.append(try bytes(leaf, input: input)) }
            return Tensor(dtype: dtype, shape: shape, values: .strings(strings))
        case .bool:
            var bools: [Bool] = []
            for leaf in leaves {
                guard case .bool(let b) = leaf else {
                    throw .invalid("Input '\(input)' expects DT_BOOL values, got \(leaf.serialized.prefix(40))")
                }
                bools.append(b)
            }
            return Tensor(dtype: dtype, shape: shape, values: .bools(bools))
        default:
            var numbers: [Double] = []
            numbers.reserveCapacity(leaves.count)
            for leaf in leaves { numbers.append(try number(leaf, as: dtype, input: input)) }
            return Tensor(dtype: dtype, shape: shape, values: .numbers(numbers))
        }
    }

    /// The tensor as nested lists (a scalar for rank 0). Floats are written in
    /// float precision; strings as text, or as `{"b64": …}` when `binary`
    /// (TF Serving does that for outputs whose name ends in `_bytes`) or when
    /// not valid UTF-8.
    public static func encode(_ tensor: Tensor, binary: Bool = false) -> JSONValue {
        let leaves: [JSONValue]
        switch tensor.values {
        case .numbers(let n):
            leaves = tensor.dtype == .float ? n.map { .float(Float($0)) } : n.map { .number($0) }
        case .bools(let b): leaves = b.map { .bool($0) }
        case .strings(let s):
            leaves = s.map { bytes in
                if !binary, let text = String(validating: bytes, as: UTF8.self) { return .string(text) }
                return .object([("b64", .string(Data(bytes).base64EncodedString()))])
            }
        }
        guard !tensor.shape.isEmpty else { return leaves.first ?? .null }
        var index = 0
        func build(_ dim: Int) -> JSONValue {
            if dim == tensor.shape.count - 1 {
                defer { index += tensor.shape[dim] }
                return .array(Array(leaves[index..<(index + tensor.shape[dim])]))
            }
            return .array((0..<tensor.shape[dim]).map { _ in build(dim + 1) })
        }
        return build(0)
    }

    private static func flatten(_ value: JSONValue, depth: Int, shape: inout [Int], leaves: inout [JSONValue],
                                input: String) throws(TFServingError) {
        guard case .array(let items) = value else {
            if depth < shape.count {
                throw .invalid("Input '\(input)' is not a rectangular list: a value where a list of \(shape[depth]) was expected")
            }
            if depth == 0 { shape = [] }
            leaves.append(value)
            return
        }
        if depth == shape.count {
            if !leaves.isEmpty {
                throw .invalid("Input '\(input)' is not a rectangular list: a list where a value was expected")
            }
            shape.append(items.count)
        } else if depth > shape.count || shape[depth] != items.count {
            throw .invalid("Input '\(input)' is not a rectangular list: expected \(depth < shape.count ? shape[depth] : 0) items at depth \(depth), got \(items.count)")
        }
        for item in items { try flatten(item, depth: depth + 1, shape: &shape, leaves: &leaves, input: input) }
    }

    private static func bytes(_ leaf: JSONValue, input: String) throws(TFServingError) -> [UInt8] {
        switch leaf {
        case .string(let text): return Array(text.utf8)
        case .object(let members) where members.count == 1 && members[0].0 == "b64":
            guard case .string(let text) = members[0].1, let data = Base64.decode(text) else {
                throw .invalid("Unable to base64 decode the value of input '\(input)'")
            }
            return Array(data)
        default:
            throw .invalid("Input '\(input)' expects DT_STRING values (text or {\"b64\": …}), got \(leaf.serialized.prefix(40))")
        }
    }

    private static func number(_ leaf: JSONValue, as dtype: Tensor.DataType,
                               input: String) throws(TFServingError) -> Double {
        guard case .number(let d) = leaf else {
            throw .invalid("Input '\(input)' expects \(dtype.rawValue) numbers, got \(leaf.serialized.prefix(40))")
        }
        let range: ClosedRange<Double>? = switch dtype {
        case .uint8: 0...255
        case .int32: Double(Int32.min)...Double(Int32.max)
        case .int64: Double(Int64.min)...Double(Int64.max).nextDown
        default: nil
        }
        if let range {
            guard d == d.rounded(), range.contains(d) else {
                throw .invalid("Input '\(input)': \(leaf.serialized) is not a valid \(dtype.rawValue) value")
            }
        } else if dtype == .float, d.isFinite, abs(d) > Double(Float.greatestFiniteMagnitude) {
            throw .invalid("Input '\(input)': \(leaf.serialized) is out of range for DT_FLOAT")
        }
        return d
    }
}
