#!/usr/bin/env bash
# Regenerates Sources/TFServingAPI (messages) and Sources/TFServingGRPC
# (services) from Protos/, TF Serving's wire contract; gRPC's health service
# (Protos/grpc/health), messages and service, goes to Sources/TFServingGRPC.
# The generated Swift is committed, so builds and CI never run this: building
# the protoc plugins takes about ten minutes on two cores.
#
# Needs protoc (apt: protobuf-compiler) and builds the two plugins, at the
# versions Package.swift uses, in a throwaway package under .build-protoc/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }

tools=.build-protoc
mkdir -p "$tools/Dummy"
cat > "$tools/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "protoc-tools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: [.target(name: "Dummy", path: "Dummy")]
)
SWIFT
echo "let unused = 0" > "$tools/Dummy/Dummy.swift"
(cd "$tools" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
bin="$tools/.build/release"

out=Sources/TFServingAPI/Generated
grpc=Sources/TFServingGRPC/Generated
rm -rf "$out" "$grpc" && mkdir -p "$out" "$grpc"
protos=$(cd Protos && find . -name '*.proto' | sed 's#^\./##' | sort)
messages=$(echo "$protos" | grep -v '^grpc/health/')
(cd Protos && protoc -I . -I /usr/include \
    --plugin=protoc-gen-swift="../$bin/protoc-gen-swift" \
    --swift_out="../$out" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    $messages)
(cd Protos && protoc -I . \
    --plugin=protoc-gen-swift="../$bin/protoc-gen-swift" \
    --swift_out="../$grpc" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    grpc/health/v1/health.proto)
services=$(cd Protos && grep -l '^service ' $protos)
(cd Protos && protoc -I . -I /usr/include \
    --plugin=protoc-gen-grpc-swift-2="../$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift-2_out="../$grpc" --grpc-swift-2_opt=Visibility=Public,FileNaming=PathToUnderscores,ProtoPathModuleMappings=module-mappings.asciipb \
    $services)
echo "generated:"; ls "$out" "$grpc"
