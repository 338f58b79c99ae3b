import Agent
import FakeBrokers
import Foundation
import LocalIPC
import MarketData
import NIOCore
import OpenAlgoWire
import Testing
import TickRecording
import WireJSON

extension SocketTests {
    /// `oactl record` against the simulator, then the replay feed, with real sockets and processes.
    @Suite("Recording and replay")
    struct RecordReplayTests {
        static let symbols = ["NSE:RELIANCE", "NFO:NIFTY28DEC2425000CE", "NSE_INDEX:NIFTY"]

        static var subscribeParams: JSONObject {
            [
                "symbols": .array(
                    Self.symbols.map { text in
                        let parts = text.split(separator: ":")
                        return .object(["exchange": .string(String(parts[0])), "symbol": .string(String(parts[1]))])
                    }
                ),
                "mode": "Depth",
            ]
        }

        /// The frame a Depth subscriber of the replay feed must get for a recorded tick: the live encoding.
        static func expectedFrame(_ record: TickRecord) -> String {
            let frame = MarketDataEnvelope.frame(for: record.tick, outerMode: .depth, broker: "replay", allocator: ByteBufferAllocator())
            return String(buffer: frame)
        }

        static func replayConfiguration(_ file: String, speed: String, loop: Bool = false) -> AgentConfiguration {
            TestAgent.configuration { configuration in
                configuration.broker = "replay"
                configuration.brokers["replay"] = .init(["file": file, "speed": speed, "loop": loop ? "true" : "false"])
            }
        }

        @Test("oactl record writes every tick in Depth; replay gives IPC and WebSocket clients the same frames, in order, and 10× is faster")
        func recordThenReplay() async throws {
            let output = String(temporarySocketPath().dropLast("agent.sock".count)) + "ticks.jsonl"
            let summary = try await TestAgent.with { agent in
                let run = try OactlRun(
                    ["record"] + Self.symbols + ["--mode", "Depth", "--output", output, "--duration", "2s"],
                    socket: agent.socketPath
                )
                #expect(run.status == 0, "\(run.errors)")
                let status = try agent.localClient().call("status")
                #expect(status.objectValue?["recordings"] == [], "the recording stops when oactl does")
                return try JSONParser.parse(run.output).objectValue ?? JSONObject()
            }
            let records = try TickRecordReader.readAll(output)
            #expect(summary["records"]?.intValue == records.count)
            #expect(records.count >= 30, "three instruments at 20 ticks/s for 2 s")
            #expect(Set(records.map { $0.tick.instrument.description }) == Set(Self.symbols))
            #expect(records.allSatisfy { $0.tick.mode == .depth && $0.tick.timestamp != nil })
            #expect(records.contains { $0.tick.depth?.buy.count == 5 })
            #expect(zip(records, records.dropFirst()).allSatisfy { $0.receivedAt <= $1.receivedAt })

            // Full speed into a local client: every frame equal to the live encoding of the recorded tick.
            try await TestAgent.with(Self.replayConfiguration(output, speed: "max")) { agent in
                let client = try agent.localClient()
                try client.call("ws_subscribe", params: Self.subscribeParams)
                var frames: [JSONValue] = []
                while frames.count < records.count {
                    guard case .event(let method, let params)? = try client.nextMessage(timeout: .seconds(10)) else { break }
                    if method == IPCEvent.marketData.rawValue { frames.append(params) }
                }
                #expect(frames == records.map { try! JSONParser.parse(Self.expectedFrame($0)) })
                let replay = try client.call("status").objectValue?["replay"]?.objectValue
                #expect(replay?["records"]?.intValue == records.count && replay?["delivered"]?.intValue == records.count)
                #expect(replay?["record"]?.intValue == records.count && replay?["recorded_at_ns"] == .int(records.last!.receivedAt))
                let table = try OactlRun(["status"], socket: agent.socketPath, terminal: true)
                #expect(table.output.contains("Replay") && table.output.contains("record \(records.count) of \(records.count)"))
            }

            // 10× into a WebSocket client: the same text, byte for byte, in a fraction of the recorded span.
            try await TestAgent.with(Self.replayConfiguration(output, speed: "10")) { agent in
                let client = try agent.client()
                try client.send(.object(["action": "subscribe", "symbols": Self.subscribeParams["symbols"]!, "mode": 3]))
                let started = ContinuousClock.now
                var texts: [String] = []
                while texts.count < records.count {
                    let frame = try client.receiveAnsweringPings()
                    if frame.opcode == 0x1 && frame.text.hasPrefix("{\"type\": \"market_data\"") { texts.append(frame.text) }
                }
                let elapsed = ContinuousClock.now - started
                #expect(texts == records.map(Self.expectedFrame))
                let span = Duration.nanoseconds(records.last!.receivedAt - records.first!.receivedAt)
                #expect(elapsed < span * 0.6, "10× of a \(span) recording took \(elapsed)")
            }
        }

        @Test("an agent killed with SIGKILL while recording ([record] in agent.toml) leaves a file readable up to its last complete record")
        func killedRecording() async throws {
            try await LiveAgentLock.shared.run {
                let directory = String(temporarySocketPath().dropLast("/agent.sock".count))
                let configuration = """
                    port = 0
                    ipc_socket = "\(directory)/a.sock"
                    [brokers.simulator]
                    ticks_per_second = 200
                    [record]
                    instruments = ["NSE:RELIANCE", "NSE:SBIN", "NFO:NIFTY28DEC2425000CE"]
                    mode = "Depth"
                    output = "\(directory)/ticks.jsonl"
                    """
                try configuration.write(toFile: directory + "/agent.toml", atomically: true, encoding: .utf8)
                let agent = Process()
                agent.executableURL = URL(fileURLWithPath: OactlRun.binary).deletingLastPathComponent().appendingPathComponent("openalgo-agent")
                agent.arguments = ["serve"]
                agent.environment = [
                    "PATH": "/usr/bin:/bin", "HOME": directory, "XDG_CONFIG_HOME": directory, "XDG_RUNTIME_DIR": directory,
                    "OPENALGO_CONFIG": directory + "/agent.toml", "OPENALGO_API_KEY": TestAgent.apiKey,
                ]
                agent.standardError = FileHandle.nullDevice
                try agent.run()
                let rotated = try await Self.waitForFile(directory, prefix: "ticks-")
                try await Task.sleep(for: .milliseconds(2500))
                let killedAt = WallClock.epochNanoseconds()
                kill(agent.processIdentifier, SIGKILL)
                agent.waitUntilExit()
                #expect(agent.terminationReason == .uncaughtSignal)

                let reader = try TickRecordReader(recording: directory + "/ticks.jsonl")
                #expect(reader.paths == [rotated])
                var records: [TickRecord] = []
                while let record = try reader.next() { records.append(record) }
                #expect(records.count > 100)
                #expect(reader.skippedLines == 0 && reader.partialLines <= 1)
                #expect(records.allSatisfy { $0.tick.mode == .depth && $0.tick.depth != nil })
                // Flushed at least once a second: the last record is at most about a second old (loosely).
                #expect(killedAt - records.last!.receivedAt < 3_000_000_000)
            }
        }

        @Test("oactl record: Ctrl-C stops the recording cleanly with status 0; --keep leaves it to --stop; status lists it")
        func recordCommand() async throws {
            let directory = String(temporarySocketPath().dropLast("/agent.sock".count))
            try await TestAgent.with { agent in
                // A relative --output is taken from oactl's directory, not the agent's.
                let process = Process()
                process.executableURL = URL(fileURLWithPath: OactlRun.binary)
                process.arguments = [
                    "record", "--symbols", "RELIANCE,SBIN", "--exchange", "NSE", "--mode", "LTP", "--output", "ticks", "--duration", "60s",
                ]
                process.environment = ["OPENALGO_AGENT_SOCKET": agent.socketPath]
                process.currentDirectoryURL = URL(fileURLWithPath: directory)
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                _ = try await Self.waitForFile(directory, prefix: "ticks-")
                try await Task.sleep(for: .milliseconds(1200))
                process.interrupt()
                let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(printed)")
                let interrupted = (output: printed, status: process.terminationStatus)
                let summary = try #require(interrupted.output.split(separator: "\n").first.map { try JSONParser.parse(String($0)) }?.objectValue)
                #expect((summary["records"]?.intValue ?? 0) > 10)
                let files = summary["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(files.count == 1 && files[0].hasPrefix(directory + "/ticks-") && files[0].hasSuffix(".jsonl"))
                #expect(try TickRecordReader.readAll(files[0]).count == summary["records"]?.intValue)

                let kept = try OactlRun(["record", "NSE:INFY", "--output", directory + "/kept.jsonl", "--keep"], socket: agent.socketPath)
                let id = try #require(try JSONParser.parse(kept.output).objectValue?["id"]?.stringValue)
                try await Task.sleep(for: .milliseconds(600))
                let status = try OactlRun(["status"], socket: agent.socketPath, terminal: true)
                #expect(status.output.contains("Recording") && status.output.contains("\(id): 1 symbols (Quote)"))
                let clients = try agent.localClient().call("clients").objectValue?["clients"]?.arrayValue ?? []
                #expect(clients.contains { $0.objectValue?["kind"] == "recorder" && $0.objectValue?["name"] == .string(id) })
                let stopped = try OactlRun(["record", "--stop", id], socket: agent.socketPath)
                let stoppedRecords = try JSONParser.parse(stopped.output).objectValue?["records"]?.intValue ?? 0
                #expect(stopped.status == 0 && stoppedRecords > 0)
                let again = try OactlRun(["record", "--stop", id], socket: agent.socketPath)
                #expect(again.status == 1 && again.errors.contains("No recording"))
                let missing = try OactlRun(["record", "NSE:INFY"], socket: agent.socketPath)
                #expect(missing.status == 64 && missing.errors.contains("--output"))
            }
        }

        private static func waitForFile(_ directory: String, prefix: String) async throws -> String {
            for _ in 0..<500 {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                if let name = names.first(where: { $0.hasPrefix(prefix) }) { return directory + "/" + name }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw IPCClientError.timedOut("the recording file")
        }
    }
}
