import LocalIPC
import Testing
import WireJSON

@Suite("JSON-RPC messages")
struct RPCMessageTests {
    private func decode(_ text: String) throws -> Result<RPCRequest, RequestFailure> {
        RPCRequest.decode(try JSONParser.parse(text))
    }

    @Test("requests with integer and string ids, with and without params; notifications have no id")
    func validRequests() throws {
        #expect(
            try self.decode(#"{"jsonrpc":"2.0","id":7,"method":"status"}"#) == .success(RPCRequest(id: .integer(7), method: "status"))
        )
        #expect(
            try self.decode(#"{"jsonrpc":"2.0","id":"a-1","method":"api_key","params":{"rotate":true}}"#)
                == .success(RPCRequest(id: .string("a-1"), method: "api_key", params: ["rotate": true]))
        )
        #expect(try self.decode(#"{"jsonrpc":"2.0","method":"status","params":null}"#) == .success(RPCRequest(id: nil, method: "status")))
    }

    @Test("invalid requests name what is wrong and keep the id when it could be read")
    func invalidRequests() throws {
        func failure(_ text: String) throws -> RequestFailure? {
            guard case .failure(let failure) = try self.decode(text) else { return nil }
            return failure
        }
        let notObject = try #require(try failure("1"))
        #expect(notObject.id == nil && notObject.error.code == -32600 && notObject.error.reason == "oa.ipc.InvalidRequest")
        let badVersion = try #require(try failure(#"{"jsonrpc":"1.0","id":3,"method":"status"}"#))
        #expect(badVersion.id == .integer(3) && badVersion.error.code == -32600)
        let noMethod = try #require(try failure(#"{"jsonrpc":"2.0","id":4}"#))
        #expect(noMethod.id == .integer(4) && noMethod.error.message.contains("method"))
        let badID = try #require(try failure(#"{"jsonrpc":"2.0","id":1.5,"method":"status"}"#))
        #expect(badID.id == nil && badID.error.code == -32600)
        let positional = try #require(try failure(#"{"jsonrpc":"2.0","id":5,"method":"status","params":[1]}"#))
        #expect(positional.error.code == -32602 && positional.error.data["field"] == "params")
    }

    @Test("replies and errors serialise as compact JSON-RPC lines and read back")
    func replies() throws {
        let reply = RPCReply.result(id: .integer(1), .object(["ok": true]))
        #expect(reply.compactJSONText == #"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#)
        let error = RPCReply.error(id: nil, .methodNotFound("nope"))
        let text = error.compactJSONText
        #expect(text.hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Unknown method 'nope'."#))
        let decoded = RPCError(json: try JSONParser.parse(text).objectValue!["error"]!)
        #expect(decoded.code == -32601 && decoded.reason == "oa.ipc.MethodNotFound" && decoded.data["method"] == "nope")
    }

    @Test("the socket path: flag, then OPENALGO_AGENT_SOCKET, then the runtime directory")
    func socketPath() {
        #expect(IPCSocketPath.resolve(explicit: "/tmp/a.sock", environment: ["OPENALGO_AGENT_SOCKET": "/tmp/b.sock"]) == "/tmp/a.sock")
        #expect(IPCSocketPath.resolve(explicit: nil, environment: ["OPENALGO_AGENT_SOCKET": "/tmp/b.sock"]) == "/tmp/b.sock")
        #expect(IPCSocketPath.resolve(explicit: nil, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"]) == "/run/user/1000/openalgo/agent.sock")
        #expect(IPCSocketPath.resolve(explicit: nil, environment: [:]).hasSuffix("/openalgo/agent.sock"))
    }
}
