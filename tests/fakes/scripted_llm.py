"""A scripted OpenAI-compatible chat server: a FAULT INJECTOR for tests and benchmarks, never a
stand-in for the real model. It streams fixed tokens at a fixed rate, and can fail with an HTTP
error, drop the connection mid-stream, or stall; it records whether a client hung up mid-stream
(what makes vLLM abort a request)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    tokens: list[str] = field(default_factory=lambda: [f"word{i} " for i in range(20)])
    seconds_per_token: float = 0.0
    http_status: int = 200
    failing_requests: int = 0  # answer this many requests with http_status, then succeed
    drop_after_tokens: int | None = None  # close the connection without finishing the stream
    completion: str = "{}"  # the message content of a non-streaming answer
    client_disconnects: int = 0
    requests: list[dict] = field(default_factory=list)


class ScriptedLLM:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        script_owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps(
                    {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
                ).encode()
                self._respond(200, body)

            def do_POST(self) -> None:
                script = script_owner.script
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                script.requests.append(request)
                failing = script.failing_requests == 0 or len(script.requests) <= script.failing_requests
                if script.http_status != 200 and failing:
                    body = json.dumps({"error": {"message": "scripted failure", "code": script.http_status}})
                    self._respond(script.http_status, body.encode())
                    return
                if not request.get("stream"):
                    self._respond(200, json.dumps(self._completion(script.completion)).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for index, token in enumerate(script.tokens):
                        if script.drop_after_tokens is not None and index >= script.drop_after_tokens:
                            self.wfile.write(b"5\r\ndata:")  # a truncated chunk, then hang up
                            self.wfile.flush()
                            self.close_connection = True
                            return
                        time.sleep(script.seconds_per_token)
                        self._event(
                            {"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
                        )
                    usage = {
                        "prompt_tokens": 50,
                        "completion_tokens": len(script.tokens),
                        "total_tokens": 50 + len(script.tokens),
                    }
                    self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    self._event({"choices": [], "usage": usage})
                    self._chunk(b"data: [DONE]\n\n")
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    script.client_disconnects += 1

            def _completion(self, content: str) -> dict:
                return {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "scripted",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
                }

            def _event(self, payload: dict) -> None:
                payload = {
                    "id": "c1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "scripted",
                    **payload,
                }
                self._chunk(b"data: " + json.dumps(payload).encode() + b"\n\n")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _respond(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
