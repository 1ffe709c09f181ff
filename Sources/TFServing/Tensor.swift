/// A tensor as TF Serving's APIs carry it: a dtype, a shape (outermost
/// dimension first) and its values flattened in row-major order.
public struct Tensor: Sendable, Equatable {
    /// The dtypes Conveyor reads and writes, named as in TensorFlow.
    public enum DataType: String, Sendable, CaseIterable {
        case float = "DT_FLOAT"
        case double = "DT_DOUBLE"
        case int32 = "DT_INT32"
        case int64 = "DT_INT64"
        case uint8 = "DT_UINT8"
        case string = "DT_STRING"
        case bool = "DT_BOOL"

        /// TensorFlow's `DataType` enum value (`types.proto`).
        public var number: Int {
            switch self {
            case .float: 1
            case .double: 2
            case .int32: 3
            case .uint8: 4
            case .string: 7
            case .int64: 9
            case .bool: 10
            }
        }

        public init?(number: Int) {
            guard let match = Self.allCases.first(where: { $0.number == number }) else { return nil }
            self = match
        }

        var isNumeric: Bool { self != .string && self != .bool }
    }

    /// Values by storage kind: numeric dtypes as `Double` (exact for every
    /// float32, int32 and uint8, and for int64 up to 2^53), strings as bytes.
    public enum Values: Sendable, Equatable {
        case numbers([Double])
        case strings([[UInt8]])
        case bools([Bool])

        public var count: Int {
            switch self {
            case .numbers(let v): v.count
            case .strings(let v): v.count
            case .bools(let v): v.count
            }
        }
    }

    public var dtype: DataType
    public var shape: [Int]
    public var values: Values

    public init(dtype: DataType, shape: [Int], values: Values) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }

    /// Number of elements the shape holds.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The numbers as `Float`, for numeric dtypes.
    public var floats: [Float]? {
        guard case .numbers(let numbers) = values else { return nil }
        return numbers.map { Float($0) }
    }

    /// A float tensor.
    public static func floats(_ values: [Float], shape: [Int]) -> Tensor {
        Tensor(dtype: .float, shape: shape, values: .numbers(values.map(Double.init)))
    }

    /// A string tensor of UTF-8 strings.
    public static func strings(_ values: [String], shape: [Int]) -> Tensor {
        Tensor(dtype: .string, shape: shape, values: .strings(values.map { Array($0.utf8) }))
    }
}
