import Foundation
import TFServing
import TFServingAPI

extension Tensor {
    /// Reads a `TensorProto` from a gRPC request: `tensor_content` (raw
    /// little-endian values) or the typed `*_val` field of its dtype. As in
    /// TensorFlow, a single typed value fills the whole shape.
    public init(proto: Tensorflow_TensorProto, name: String) throws(TFServingError) {
        guard let dtype = Tensor.DataType(number: proto.dtype.rawValue) else {
            throw .invalid("Input '\(name)': dtype \(proto.dtype) is not supported (use DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_UINT8, DT_BOOL or DT_STRING)")
        }
        var shape: [Int] = []
        for dim in proto.tensorShape.dim {
            guard dim.size >= 0, dim.size <= Int64(Int32.max) else {
                throw .invalid("Input '\(name)': dimension \(dim.size) is not valid")
            }
            shape.append(Int(dim.size))
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= 1 << 28 else { throw .invalid("Input '\(name)': shape \(shape) is too large") }
            count = product
        }
        let values: Values
        if !proto.tensorContent.isEmpty {
            values = try Self.decodeContent(proto.tensorContent, dtype: dtype, count: count, name: name)
        } else {
            switch dtype {
            case .float: values = .numbers(try Self.fill(proto.floatVal.map(Double.init), count, name))
            case .double: values = .numbers(try Self.fill(proto.doubleVal, count, name))
            case .int32, .uint8: values = .numbers(try Self.fill(proto.intVal.map(Double.init), count, name))
            case .int64: values = .numbers(try Self.fill(proto.int64Val.map(Double.init), count, name))
            case .bool: values = .bools(try Self.fill(proto.boolVal, count, name))
            case .string: values = .strings(try Self.fill(proto.stringVal.map { [UInt8]($0) }, count, name))
            }
        }
        self.init(dtype: dtype, shape: shape, values: values)
    }

    /// The tensor as a `TensorProto` with its typed `*_val` field set.
    public var proto: Tensorflow_TensorProto {
        var proto = Tensorflow_TensorProto()
        proto.dtype = Tensorflow_DataType(rawValue: dtype.number) ?? .dtInvalid
        proto.tensorShape.dim = shape.map { size in
            var dim = Tensorflow_TensorShapeProto.Dim()
            dim.size = Int64(size)
            return dim
        }
        switch values {
        case .numbers(let numbers):
            switch dtype {
            case .float: proto.floatVal = numbers.map { Float($0) }
            case .double: proto.doubleVal = numbers
            case .int64: proto.int64Val = numbers.map { Int64($0) }
            default: proto.intVal = numbers.map { Int32($0) }
            }
        case .strings(let strings): proto.stringVal = strings.map { Data($0) }
        case .bools(let bools): proto.boolVal = bools
        }
        return proto
    }

    private static func fill<T>(_ values: [T], _ count: Int, _ name: String) throws(TFServingError) -> [T] {
        if values.count == count { return values }
        if values.count == 1 { return Array(repeating: values[0], count: count) }
        throw .invalid("Input '\(name)': \(values.count) values for a shape of \(count) elements")
    }

    private static func decodeContent(_ data: Data, dtype: DataType, count: Int,
                                      name: String) throws(TFServingError) -> Values {
        let width: Int = switch dtype {
        case .float, .int32: 4
        case .double, .int64: 8
        case .uint8, .bool: 1
        case .string: 0
        }
        guard width > 0 else { throw .invalid("Input '\(name)': DT_STRING values cannot be sent in tensor_content") }
        guard data.count == width * count else {
            throw .invalid("Input '\(name)': tensor_content holds \(data.count) bytes; shape and dtype need \(width * count)")
        }
        let bytes = [UInt8](data)
        func word<T: FixedWidthInteger>(_ i: Int, _: T.Type) -> T {
            var v: T = 0
            for b in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: bytes[i * MemoryLayout<T>.size + b]) << (8 * b) }
            return v
        }
        switch dtype {
        case .float: return .numbers((0..<count).map { Double(Float(bitPattern: word($0, UInt32.self))) })
        case .double: return .numbers((0..<count).map { Double(bitPattern: word($0, UInt64.self)) })
        case .int32: return .numbers((0..<count).map { Double(Int32(bitPattern: word($0, UInt32.self))) })
        case .int64: return .numbers((0..<count).map { Double(Int64(bitPattern: word($0, UInt64.self))) })
        case .uint8: return .numbers(bytes.map(Double.init))
        case .bool: return .bools(bytes.map { $0 != 0 })
        case .string: return .strings([])
        }
    }
}
