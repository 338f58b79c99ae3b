// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let testSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "openalgo-agent",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "openalgo-agent", targets: ["openalgo-agent"]),
        .executable(name: "oa-bench", targets: ["oa-bench"]),
        .executable(name: "oa-decoder-bench", targets: ["oa-decoder-bench"]),
        .executable(name: "oa-recording-bench", targets: ["oa-recording-bench"]),
        .library(name: "WireJSON", targets: ["WireJSON"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "MarketData", targets: ["MarketData"]),
        .library(name: "OpenAlgoWire", targets: ["OpenAlgoWire"]),
        .library(name: "StreamingHub", targets: ["StreamingHub"]),
        .library(name: "TickRecording", targets: ["TickRecording"]),
        .library(name: "BrokerKit", targets: ["BrokerKit"]),
        .library(name: "Brokers", targets: ["Brokers"]),
        .library(name: "ProxyServer", targets: ["ProxyServer"]),
        .library(name: "LocalIPC", targets: ["LocalIPC"]),
        .library(name: "LocalIPCServer", targets: ["LocalIPCServer"]),
        .library(name: "SystemdSupport", targets: ["SystemdSupport"]),
        .library(name: "Agent", targets: ["Agent"]),
        .executable(name: "oactl", targets: ["oactl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // No pkgConfig: libzmq's .pc file adds -isystem flags for its optional dependencies
        // (krb5, pgm, libxml2), which SwiftPM refuses with a warning on every build; zmq.h is in
        // /usr/include and the module map links libzmq itself.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .target(
            name: "ZeroMQ",
            dependencies: ["CZeroMQ", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "WireJSON",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "MarketData",
            dependencies: ["WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OpenAlgoWire",
            dependencies: ["MarketData", "WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "StreamingHub",
            dependencies: [
                "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "TickRecording",
            dependencies: [
                "MarketData", "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The framework every broker feed is built on (README, "Layout", says what is where).
        .target(
            name: "BrokerKit",
            dependencies: [
                "MarketData", "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ZerodhaFeed",
            dependencies: [
                "BrokerKit", "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "AngelOneFeed",
            dependencies: [
                "BrokerKit", "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "DhanFeed",
            dependencies: [
                "BrokerKit", "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SimulatorFeed",
            dependencies: [
                "BrokerKit", "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ReplayFeed",
            dependencies: [
                "BrokerKit", "MarketData", "TickRecording", "WireJSON",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OpenAlgoBusFeed",
            dependencies: [
                "BrokerKit", "MarketData", "WireJSON", "ZeroMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The registry: every feed by name. A new broker is one target above and one entry in
        // BrokerRegistry.entries.
        .target(
            name: "Brokers",
            dependencies: [
                "BrokerKit", "ZerodhaFeed", "AngelOneFeed", "DhanFeed", "SimulatorFeed", "ReplayFeed", "OpenAlgoBusFeed",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ProxyServer",
            dependencies: [
                "MarketData", "OpenAlgoWire", "StreamingHub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LocalIPC",
            dependencies: ["WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "LocalIPCServer",
            dependencies: [
                "LocalIPC", "MarketData", "StreamingHub", "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SystemdSupport",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Agent",
            dependencies: [
                "MarketData", "StreamingHub", "Brokers", "ProxyServer", "LocalIPC", "LocalIPCServer", "SystemdSupport", "TickRecording",
                "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "openalgo-agent",
            dependencies: [
                "Agent", "Brokers", "ProxyServer", "LocalIPC", "LocalIPCServer", "SystemdSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "OactlSupport",
            dependencies: ["LocalIPC", "MarketData", "WireJSON"],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "oactl",
            dependencies: [
                "OactlSupport", "LocalIPC", "MarketData", "WireJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        // oa-bench's arithmetic (injection schedule, subscription layout, adapter messages, timestamp
        // units), apart from its sockets so that it can be unit-tested.
        .target(name: "BenchmarkSupport", path: "Benchmarks/BenchmarkSupport", swiftSettings: strictSettings),
        .executableTarget(
            name: "oa-bench",
            dependencies: [
                "BenchmarkSupport", "ZeroMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/oa-bench",
            swiftSettings: strictSettings
        ),
        .target(name: "CAllocationCounter", path: "Benchmarks/CAllocationCounter"),
        .executableTarget(
            name: "oa-decoder-bench",
            dependencies: [
                "AngelOneFeed", "DhanFeed", "MarketData", "OpenAlgoBusFeed", "ZerodhaFeed", "ZeroMQ", "CAllocationCounter",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/oa-decoder-bench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "oa-recording-bench",
            dependencies: [
                "MarketData", "ReplayFeed", "StreamingHub", "TickRecording",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/oa-recording-bench",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "WireJSONTests",
            dependencies: ["WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "MarketDataTests",
            dependencies: ["MarketData", "WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "TickRecordingTests",
            dependencies: ["TickRecording", "MarketData", "WireJSON", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "OpenAlgoWireTests",
            dependencies: ["OpenAlgoWire", "WireJSON", "MarketData", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "StreamingHubTests",
            dependencies: [
                "StreamingHub", "MarketData",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSettings
        ),
        .target(
            name: "FakeBrokers",
            dependencies: [
                "BrokerKit", "DhanFeed", "WireJSON",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/FakeBrokers",
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "BrokersTests",
            dependencies: [
                "BrokerKit", "Brokers", "ZerodhaFeed", "AngelOneFeed", "DhanFeed", "SimulatorFeed", "ReplayFeed", "MarketData", "FakeBrokers",
                "TickRecording", "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "ProxyServerTests",
            dependencies: [
                "ProxyServer", "Agent", "FakeBrokers", "StreamingHub", "WireJSON", "MarketData", "LocalIPC", "LocalIPCServer",
                "OpenAlgoWire", "TickRecording",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "BrokerFeedTests",
            dependencies: [
                "Agent", "BrokerKit", "ZeroMQ", "LocalIPC", "ProxyServer", "StreamingHub", "FakeBrokers", "MarketData", "WireJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: [
                "ZeroMQ", "BrokerKit", "OpenAlgoBusFeed", "MarketData", "WireJSON", "FakeBrokers",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "LocalIPCTests",
            dependencies: [
                "LocalIPC", "LocalIPCServer", "MarketData", "WireJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "OactlSupportTests",
            dependencies: ["OactlSupport", "MarketData", "WireJSON"],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "Agent", "StreamingHub", "MarketData", "SystemdSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "BenchmarkSupportTests",
            dependencies: ["BenchmarkSupport", "OpenAlgoBusFeed", "MarketData", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: testSettings
        ),
        .testTarget(
            name: "SystemdTests",
            dependencies: ["SystemdSupport", "FakeBrokers", "LocalIPC", "WireJSON"],
            swiftSettings: testSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
