import Jobs
import TFServing
import XCTest

/// A tensor model's input is taken as the model's exported graph takes it
/// (what TensorFlow did with each shape is in docs/tf-serving.md), and its
/// output is returned as the model gives it.
final class TensorModelIOTests: XCTestCase {
    private func info(_ flatten: ServableAnnouncement.TensorSignature.Flatten?, input: [Int] = [28, 28]) -> ServableAnnouncement.Version {
        .init(version: 1, state: .available, kind: .tensor, inputShape: input, classes: 10,
              tensorSignature: .init(keys: ["serving_default"], input: "x", output: "y", outputShape: [10], flatten: flatten))
    }

    private func zeros(_ shape: [Int], dtype: Tensor.DataType = .float) -> Tensor {
        Tensor(dtype: dtype, shape: shape, values: .numbers(Array(repeating: 0, count: shape.reduce(1, *))))
    }

    /// The batch the input is taken as, or the error's message.
    private func outcome(_ shape: [Int], _ info: ServableAnnouncement.Version, dtype: Tensor.DataType = .float) -> String {
        do throws(TFServingError) {
            let batched = try TensorModelIO.batched(zeros(shape, dtype: dtype), info: info, name: "x")
            XCTAssertEqual(Array(batched.shape.dropFirst()), info.inputShape)
            return "batch \(batched.shape[0])"
        } catch {
            XCTAssertEqual(error.code, .invalidArgument)
            return error.message
        }
    }

    func testAKeras2FlattenTakesAnyMultipleOfAnExample() {
        let info = info(.anySize)
        XCTAssertEqual(outcome([20, 28, 28], info), "batch 20")
        XCTAssertEqual(outcome([784], info), "batch 1", "the tutorial's flat list")
        XCTAssertEqual(outcome([1, 784], info), "batch 1")
        XCTAssertEqual(outcome([28, 28], info), "batch 1")
        XCTAssertEqual(outcome([2, 784], info), "batch 2")
        XCTAssertEqual(outcome([4, 196], info), "batch 1")
        XCTAssertEqual(outcome([783], info), "Input to reshape is a tensor with 783 values, but the requested shape requires a multiple of 784")
    }

    func testAKeras3FlattenTakesTheFirstDimensionAsTheBatch() {
        let info = info(.firstDimension)
        XCTAssertEqual(outcome([20, 28, 28], info), "batch 20")
        XCTAssertEqual(outcome([784], info), "Input to reshape is a tensor with 784 values, but the requested shape has 614656")
        XCTAssertEqual(outcome([1, 784], info), "batch 1")
        XCTAssertEqual(outcome([28, 28], info), "Input to reshape is a tensor with 784 values, but the requested shape has 21952")
        XCTAssertEqual(outcome([2, 784], info), "batch 2")
        XCTAssertEqual(outcome([4, 196], info), "Input to reshape is a tensor with 784 values, but the requested shape has 3136")
        XCTAssertEqual(outcome([], self.info(.firstDimension, input: [1])), "Input 'x' must have a batch dimension, got a scalar")
    }

    func testOtherModelsNeedTheirInputShape() {
        let info = info(nil, input: [28, 28, 1])
        XCTAssertEqual(outcome([3, 28, 28, 1], info), "batch 3")
        XCTAssertEqual(outcome([784], info), "Input 'x' must be of shape [-1, 28, 28, 1], got [784]")
        XCTAssertEqual(outcome([1, 28, 28], info), "Input 'x' must be of shape [-1, 28, 28, 1], got [1, 28, 28]")
        XCTAssertEqual(outcome([1, 28, 28, 1], info, dtype: .double), "Expects arg[0] to be float but double is provided")
        XCTAssertEqual(outcome([1, 28, 28, 1], info, dtype: .int32), "Expects arg[0] to be float but int32 is provided")
    }

    func testTheOutputIsEachJobsValuesByIndex() throws {
        let info = info(.anySize)
        func result(_ id: String, _ values: [Float]) -> JobResult {
            // Workers list values best first; the output puts them back by index.
            let top = values.enumerated().map { ClassScore(index: $0.offset, label: "\($0.offset)", score: $0.element) }
            return JobResult(jobID: id, model: "m", status: .succeeded, top: top.sorted { $0.score > $1.score })
        }
        let logits: [[Float]] = [(0..<10).map { Float($0) - 4.5 }, (0..<10).map { -Float($0) * 1.25 }]
        let output = try TensorModelIO.output([result("a", logits[0]), result("b", logits[1])], info: info)
        XCTAssertEqual(output, .floats(logits[0] + logits[1], shape: [2, 10]))
        XCTAssertThrowsError(try TensorModelIO.output([result("c", [1, 2, 3])], info: info)) { error in
            XCTAssertEqual((error as? TFServingError)?.code, .internal)
            XCTAssertTrue("\(error)".contains("job c answered 3 values; the model has 10"), "\(error)")
        }
    }

    func testATensorModelsSignaturesAreItsExports() throws {
        let signatures = ModelSignatures.all(for: info(.anySize))
        XCTAssertEqual(Set(signatures.keys), ["serving_default"])
        let signature = try ModelSignatures.signature("", for: info(.anySize))
        XCTAssertEqual(signature.inputs, [.init(name: "x", dtype: .float, shape: [-1, 28, 28])])
        XCTAssertEqual(signature.outputs, [.init(name: "y", dtype: .float, shape: [-1, 10])])
        XCTAssertEqual(signature.method, Signature.predictMethod)
        XCTAssertThrowsError(try ModelSignatures.signature("predict_images", for: info(.anySize)))
    }
}
