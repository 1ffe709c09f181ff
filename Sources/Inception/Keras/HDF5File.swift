import CHDF5
import Foundation

// Every call into libhdf5 in the project lives in this file.
//
// libhdf5 keeps global state (its ID tables, caches and error stacks). The
// serial build is not guaranteed to be thread safe, so every call goes through
// `withHDF5`, which holds one process-wide lock.

/// The one lock that serialises all libhdf5 calls in the process.
private let hdf5Lock = NSLock()

/// Runs `body` holding the process-wide HDF5 lock, with HDF5's automatic error
/// printing turned off.
///
/// Automatic printing is switched off on every entry, not once: in a
/// thread-safe build of libhdf5 (Debian's serial package is one) each thread has
/// its own default error stack, and a new thread's stack starts out printing to
/// stderr. The call is cheap.
private func withHDF5<T>(_ body: () throws -> T) rethrows -> T {
    hdf5Lock.lock()
    defer { hdf5Lock.unlock() }
    _ = H5Eset_auto2(chdf5_e_default(), nil, nil)
    return try body()
}

/// The most specific description on the current thread's HDF5 error stack,
/// formatted as " (description)", or "" when the stack is empty.
///
/// Call it (holding the lock) right after the failing call: any later HDF5 call,
/// including a close, clears the stack.
private func hdf5StackDetail() -> String {
    var descriptions: [String] = []
    _ = withUnsafeMutablePointer(to: &descriptions) { pointer in
        H5Ewalk2(chdf5_e_default(), H5E_WALK_DOWNWARD, { _, error, client in
            guard let error, let client, let text = error.pointee.desc else { return 0 }
            let list = client.assumingMemoryBound(to: [String].self)
            let description = String(cString: text)
            if !description.isEmpty { list.pointee.append(description) }
            return 0
        }, pointer)
    }
    // Walking downward goes from the API call to where the error was detected.
    guard let innermost = descriptions.last else { return "" }
    return " (\(innermost))"
}

/// Refuses reads that would need an unreasonable buffer (a corrupt header can
/// claim any size); 4 GiB is far above any Keras weight tensor.
private let maximumReadBytes = 1 << 32

/// A read-only HDF5 file. Owns the hid_t and closes it in deinit.
///
/// This is the whole of the project's interface to libhdf5, with just what is
/// needed to read Keras 2 HDF5 model and weights files and Keras 3's
/// `model.weights.h5` (from memory): string attributes, object existence and
/// float datasets.
///
/// Object paths are absolute or relative to the root group ("/" is the root);
/// link names may contain ":" (as in `conv2d_1/conv2d_1/kernel:0`).
///
/// `@unchecked Sendable` is safe: the only stored state is two immutable
/// values, and every use of the HDF5 identifier, from any thread, including the
/// close in `deinit`, goes through one process-wide lock.
public final class HDF5File: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    private let file: hid_t

    /// Opens an HDF5 file read-only.
    ///
    /// - Throws: `HDF5Error` with "no such file: PATH" when nothing is at
    ///   `path`, "not an HDF5 file: PATH" when the file has no HDF5 signature,
    ///   and "could not open HDF5 file: PATH" when libhdf5 cannot open it (for
    ///   example a truncated file).
    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HDF5Error("no such file: \(path)")
        }
        if isDirectory.boolValue {
            throw HDF5Error("not an HDF5 file: \(path) (it is a directory)")
        }
        file = try withHDF5 {
            let isHDF5 = H5Fis_hdf5(path)
            if isHDF5 == 0 {
                throw HDF5Error("not an HDF5 file: \(path)")
            }
            if isHDF5 < 0 {
                throw HDF5Error("could not read file: \(path)\(hdf5StackDetail())")
            }
            let id = H5Fopen(path, chdf5_acc_rdonly(), chdf5_p_default())
            if id < 0 {
                throw HDF5Error("could not open HDF5 file: \(path)\(hdf5StackDetail())")
            }
            return id
        }
    }

    /// Opens an HDF5 file held in memory (a Keras 3 archive's
    /// `model.weights.h5`) read-only; libhdf5 keeps its own copy of the bytes.
    /// `name` stands for the file in messages.
    ///
    /// - Throws: `HDF5Error` "could not open HDF5 file: NAME" when libhdf5
    ///   cannot read the image (not HDF5, or truncated).
    public init(image: UnsafeRawBufferPointer, name: String) throws {
        path = name
        file = try withHDF5 {
            let access = H5Pcreate(chdf5_p_file_access())
            guard access >= 0 else { throw HDF5Error("could not create file access properties for \(name)\(hdf5StackDetail())") }
            defer { H5Pclose(access) }
            // The core (memory) driver, without writing back to a file.
            guard H5Pset_fapl_core(access, 1 << 16, false) >= 0,
                  H5Pset_file_image(access, UnsafeMutableRawPointer(mutating: image.baseAddress), image.count) >= 0 else {
                throw HDF5Error("could not hand \(name) to libhdf5\(hdf5StackDetail())")
            }
            let id = H5Fopen(name, chdf5_acc_rdonly(), access)
            if id < 0 {
                throw HDF5Error("could not open HDF5 file: \(name)\(hdf5StackDetail())")
            }
            return id
        }
    }

    deinit {
        let file = self.file
        withHDF5 { _ = H5Fclose(file) }
    }

    // MARK: - Existence

    /// true if a group or dataset exists at the path ("/" is the root group).
    public func exists(_ objectPath: String) -> Bool {
        withHDF5 { objectExists(objectPath) }
    }

    /// true if an attribute `name` exists on the object (group or dataset) at
    /// `objectPath` ("/" = root). false when the object itself does not exist.
    public func hasAttribute(_ name: String, at objectPath: String) -> Bool {
        withHDF5 {
            guard objectExists(objectPath) else { return false }
            return H5Aexists_by_name(file, normalised(objectPath), name, chdf5_p_default()) > 0
        }
    }

    // MARK: - String attributes

    /// A string-array attribute (or scalar string, returned as one element).
    ///
    /// Handles both fixed-length null-padded strings (numpy `S<n>`) and
    /// variable-length strings, of any rank. An empty floating-point array
    /// (Keras writes an empty float64 array of shape (0,) as the `weight_names`
    /// of a layer without weights) returns [].
    ///
    /// - Throws: `HDF5Error` when the object or attribute does not exist, the
    ///   attribute has any other type, or libhdf5 fails to read it.
    public func stringsAttribute(_ name: String, at objectPath: String) throws -> [String] {
        try withHDF5 { try readStrings(name, at: objectPath) }
    }

    /// A scalar string attribute (fixed or variable length), e.g.
    /// "model_config", "backend", "keras_version". A one-element string array
    /// is accepted too.
    ///
    /// - Throws: `HDF5Error` when the attribute is missing, is not a string, or
    ///   holds other than exactly one string.
    public func stringAttribute(_ name: String, at objectPath: String) throws -> String {
        let strings = try withHDF5 { try readStrings(name, at: objectPath) }
        guard strings.count == 1 else {
            throw HDF5Error(
                "attribute \(name) of \(objectPath) in \(path) holds \(strings.count) strings, expected one")
        }
        return strings[0]
    }

    // MARK: - Datasets

    /// Shape of a dataset ([] for a scalar dataset).
    ///
    /// - Throws: `HDF5Error` when there is no dataset at `path`.
    public func datasetShape(_ path: String) throws -> [Int] {
        try withHDF5 {
            let dataset = try openDataset(path)
            defer { H5Dclose(dataset) }
            let space = H5Dget_space(dataset)
            guard space >= 0 else {
                throw HDF5Error("could not get the dataspace of \(path) in \(self.path)\(hdf5StackDetail())")
            }
            defer { H5Sclose(space) }
            return try shape(of: space, what: "dataset \(path)")
        }
    }

    /// A dataset converted to float32 (HDF5 converts float64, float16, integers
    /// etc. via H5T_NATIVE_FLOAT), with its shape. Values are in C (row-major)
    /// order.
    ///
    /// - Throws: `HDF5Error` when there is no dataset at `path`, it is not of a
    ///   float or integer type, or the read fails (for example because the file
    ///   is truncated).
    public func readFloats(_ path: String) throws -> (shape: [Int], values: [Float]) {
        try withHDF5 {
            let dataset = try openDataset(path)
            defer { H5Dclose(dataset) }

            let type = H5Dget_type(dataset)
            guard type >= 0 else {
                throw HDF5Error("could not get the type of dataset \(path) in \(self.path)\(hdf5StackDetail())")
            }
            defer { H5Tclose(type) }
            let typeClass = H5Tget_class(type)
            guard typeClass == H5T_FLOAT || typeClass == H5T_INTEGER else {
                throw HDF5Error(
                    "dataset \(path) in \(self.path) is not numeric (HDF5 type class \(typeClass.rawValue))")
            }

            let space = H5Dget_space(dataset)
            guard space >= 0 else {
                throw HDF5Error("could not get the dataspace of \(path) in \(self.path)\(hdf5StackDetail())")
            }
            defer { H5Sclose(space) }
            let dims = try shape(of: space, what: "dataset \(path)")
            let count = try elementCount(dims, elementSize: MemoryLayout<Float>.size, what: "dataset \(path)")
            if count == 0 { return (dims, []) }

            let values = try [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
                initialised = 0
                let status = H5Dread(
                    dataset, chdf5_native_float(), chdf5_s_all(), chdf5_s_all(), chdf5_p_default(),
                    buffer.baseAddress)
                guard status >= 0 else {
                    throw HDF5Error("could not read dataset \(path) in \(self.path)\(hdf5StackDetail())")
                }
                initialised = count
            }
            return (dims, values)
        }
    }

    // MARK: - Helpers (call only while holding the lock)

    /// An absolute object path: "" becomes "/", a leading "/" is added.
    private func normalised(_ objectPath: String) -> String {
        objectPath.hasPrefix("/") ? objectPath : "/" + objectPath
    }

    /// Whether a group or dataset exists at `objectPath`, checking each link of
    /// the path in turn (H5Lexists fails rather than returning false when an
    /// intermediate group is missing).
    private func objectExists(_ objectPath: String) -> Bool {
        let components = objectPath.split(separator: "/", omittingEmptySubsequences: true)
        if components.isEmpty { return true }
        var prefix = ""
        for component in components {
            prefix += "/" + component
            guard H5Lexists(file, prefix, chdf5_p_default()) > 0 else { return false }
        }
        // The final link exists; check it leads to an object (not a dangling soft link).
        return H5Oexists_by_name(file, prefix, chdf5_p_default()) > 0
    }

    /// Opens the dataset at `datasetPath`; the caller closes it.
    private func openDataset(_ datasetPath: String) throws -> hid_t {
        guard objectExists(datasetPath) else {
            throw HDF5Error("no dataset \(datasetPath) in \(path)")
        }
        let dataset = H5Dopen2(file, normalised(datasetPath), chdf5_p_default())
        guard dataset >= 0 else {
            throw HDF5Error("could not open dataset \(datasetPath) in \(path)\(hdf5StackDetail())")
        }
        return dataset
    }

    /// The dimensions of a simple or scalar dataspace; [0] for a null dataspace.
    private func shape(of space: hid_t, what: String) throws -> [Int] {
        let spaceClass = H5Sget_simple_extent_type(space)
        if spaceClass == H5S_NULL { return [0] }
        if spaceClass == H5S_SCALAR { return [] }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0, spaceClass == H5S_SIMPLE else {
            throw HDF5Error("could not get the shape of \(what) in \(path)\(hdf5StackDetail())")
        }
        if rank == 0 { return [] }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else {
            throw HDF5Error("could not get the shape of \(what) in \(path)\(hdf5StackDetail())")
        }
        return try dims.map { dim in
            guard dim <= hsize_t(Int.max) else {
                throw HDF5Error("\(what) in \(path) has an impossible dimension \(dim)")
            }
            return Int(dim)
        }
    }

    /// The number of elements of `shape`, checked against overflow and
    /// `maximumReadBytes`.
    private func elementCount(_ shape: [Int], elementSize: Int, what: String) throws -> Int {
        var count = 1
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw HDF5Error("\(what) in \(path) is impossibly large: \(shape)") }
            count = product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementSize, 1))
        guard !overflow, bytes <= maximumReadBytes else {
            throw HDF5Error("\(what) in \(path) is too large to read: shape \(shape), \(elementSize)-byte elements")
        }
        return count
    }

    /// Reads a string or string-array attribute (see `stringsAttribute`).
    private func readStrings(_ name: String, at objectPath: String) throws -> [String] {
        let what = "attribute \(name) of \(objectPath)"
        guard objectExists(objectPath) else {
            throw HDF5Error("no object \(objectPath) in \(path) (looking for attribute \(name))")
        }
        let objectName = normalised(objectPath)
        guard H5Aexists_by_name(file, objectName, name, chdf5_p_default()) > 0 else {
            throw HDF5Error("no \(what) in \(path)")
        }
        let attribute = H5Aopen_by_name(file, objectName, name, chdf5_p_default(), chdf5_p_default())
        guard attribute >= 0 else {
            throw HDF5Error("could not open \(what) in \(path)\(hdf5StackDetail())")
        }
        defer { H5Aclose(attribute) }

        let fileType = H5Aget_type(attribute)
        guard fileType >= 0 else {
            throw HDF5Error("could not get the type of \(what) in \(path)\(hdf5StackDetail())")
        }
        defer { H5Tclose(fileType) }
        let space = H5Aget_space(attribute)
        guard space >= 0 else {
            throw HDF5Error("could not get the dataspace of \(what) in \(path)\(hdf5StackDetail())")
        }
        defer { H5Sclose(space) }
        let points = H5Sget_simple_extent_npoints(space)
        guard points >= 0 else {
            throw HDF5Error("could not count the elements of \(what) in \(path)\(hdf5StackDetail())")
        }

        let typeClass = H5Tget_class(fileType)
        if typeClass == H5T_FLOAT && points == 0 {
            return []  // Keras: `weight_names` of a layer without weights.
        }
        guard typeClass == H5T_STRING else {
            throw HDF5Error(
                "\(what) in \(path) is not a string (HDF5 type class \(typeClass.rawValue), \(points) elements)")
        }
        if points == 0 { return [] }
        let count = Int(points)

        // A memory type with the file's character set: HDF5 does not convert
        // between character sets.
        let memoryType = H5Tcopy(chdf5_c_s1())
        guard memoryType >= 0 else {
            throw HDF5Error("could not create a string type for \(what) in \(path)\(hdf5StackDetail())")
        }
        defer { H5Tclose(memoryType) }
        let characterSet = H5Tget_cset(fileType)
        guard characterSet != H5T_CSET_ERROR, H5Tset_cset(memoryType, characterSet) >= 0 else {
            throw HDF5Error("could not set up the character set for \(what) in \(path)\(hdf5StackDetail())")
        }

        let isVariable = H5Tis_variable_str(fileType)
        guard isVariable >= 0 else {
            throw HDF5Error("could not inspect the string type of \(what) in \(path)\(hdf5StackDetail())")
        }
        if isVariable > 0 {
            guard H5Tset_size(memoryType, chdf5_variable()) >= 0 else {
                throw HDF5Error("could not set up a variable-length string type for \(what) in \(path)\(hdf5StackDetail())")
            }
            _ = try elementCount([count], elementSize: MemoryLayout<UnsafeMutablePointer<CChar>?>.size, what: what)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBufferPointer { buffer in
                H5Aread(attribute, memoryType, buffer.baseAddress)
            }
            guard status >= 0 else {
                let detail = hdf5StackDetail()
                // A failed conversion may still have allocated some strings.
                _ = pointers.withUnsafeMutableBufferPointer { buffer in
                    H5Dvlen_reclaim(memoryType, space, chdf5_p_default(), buffer.baseAddress)
                }
                throw HDF5Error("could not read \(what) in \(path)\(detail)")
            }
            let strings = pointers.map { pointer in pointer.map { String(cString: $0) } ?? "" }
            _ = pointers.withUnsafeMutableBufferPointer { buffer in
                H5Dvlen_reclaim(memoryType, space, chdf5_p_default(), buffer.baseAddress)
            }
            return strings
        }

        // Fixed length: read null-padded, so a string that fills its slot keeps
        // its last character, and cut each slot at its first NUL.
        let size = H5Tget_size(fileType)
        guard size > 0 else {
            throw HDF5Error("could not get the string size of \(what) in \(path)\(hdf5StackDetail())")
        }
        guard H5Tset_size(memoryType, size) >= 0, H5Tset_strpad(memoryType, H5T_STR_NULLPAD) >= 0 else {
            throw HDF5Error("could not set up a fixed-length string type for \(what) in \(path)\(hdf5StackDetail())")
        }
        let slot = Int(size)
        let total = try elementCount([count, slot], elementSize: 1, what: what)
        var bytes = [UInt8](repeating: 0, count: total)
        let status = bytes.withUnsafeMutableBytes { buffer in
            H5Aread(attribute, memoryType, buffer.baseAddress)
        }
        guard status >= 0 else {
            throw HDF5Error("could not read \(what) in \(path)\(hdf5StackDetail())")
        }
        return (0..<count).map { index in
            let chunk = bytes[index * slot ..< (index + 1) * slot]
            let end = chunk.firstIndex(of: 0) ?? chunk.endIndex
            return String(decoding: chunk[chunk.startIndex ..< end], as: UTF8.self)
        }
    }
}
