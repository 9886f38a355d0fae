"""A page client over a real websocket, speaking viser's wire protocol as the browser does.

It sends what any client may send — its camera, a GUI value (any value, to any input, disabled or
not), a button press — and collects what the server sends back (decoded from viser's wire format:
16-byte header, zstd msgpack). Tests use it to act as a hostile page and to receive downloads.
"""

from __future__ import annotations

import threading
import time

import msgspec
import viser
import websockets.sync.client
import zstandard
from viser import _messages


class PageClient:
    """Connected to ``server`` (a :class:`~splatgen.core.viewer.ViewerServer`) until :meth:`close`."""

    def __init__(self, server, timeout: float = 10.0):
        self.server = server
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self.ws = websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}", open_timeout=timeout,
                                                 subprotocols=[f"viser-v{viser.__version__}"],
                                                 max_size=None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        before = set(server.server.get_clients())
        self.move_camera((0.0, 0.0, 3.0))
        end = time.monotonic() + timeout
        while not set(server.server.get_clients()) - before:  # viser counts a client from its first camera
            if time.monotonic() > end:
                raise TimeoutError("the viewer never registered the client")
            time.sleep(0.02)
        self.client_id = next(iter(set(server.server.get_clients()) - before))

    def move_camera(self, position, look_at=(0.0, 0.0, 0.0)) -> None:
        """What the page sends as its camera moves (orientation left as is: tests only need positions)."""
        self.send(_messages.ViewerCameraMessage(wxyz=(1.0, 0.0, 0.0, 0.0), position=tuple(position), fov=0.8,
                                                near=0.01, far=100.0, image_height=240, image_width=320,
                                                look_at=tuple(look_at), up_direction=(0.0, 1.0, 0.0)))

    def send(self, message) -> None:
        self.ws.send(msgspec.msgpack.encode(message.as_serializable_dict()))

    def set_value(self, handle, value) -> None:
        """What a client sends when it changes an input (viser applies it whatever the input's state);
        ``handle``: a GUI handle, or the uuid of a widget the server sent this client."""
        uuid = handle if isinstance(handle, str) else handle._impl.uuid
        self.send(_messages.GuiUpdateMessage(uuid, {"value": value}))

    def upload(self, handle, filename: str, content: bytes, part_size: int = 1 << 20) -> None:
        """What the page sends when a file is chosen in an upload button: its name and its bytes."""
        import uuid

        transfer = str(uuid.uuid4())
        parts = [content[i:i + part_size] for i in range(0, len(content), part_size)] or [b""]
        self.send(_messages.FileTransferStartUpload(handle._impl.uuid, transfer, filename, "image/png",
                                                    len(parts), len(content)))
        for i, part in enumerate(parts):
            self.send(_messages.FileTransferPart(handle._impl.uuid, transfer, i, part))

    def widget(self, message_type: str, label: str, timeout: float = 10.0) -> str:
        """The uuid of the newest widget of ``message_type`` (e.g. ``"GuiButtonMessage"``) labelled
        ``label`` that the server sent (a dialog's widgets exist only in this client)."""
        def find():
            found = [m for m in self.of_type(message_type) if m.get("props", {}).get("label") == label]
            return found[-1]["uuid"] if found else None
        return self.wait_for(find, timeout)

    def click(self, handle) -> None:
        self.set_value(handle, True)

    def _read(self) -> None:
        dctx = zstandard.ZstdDecompressor()
        try:
            for raw in self.ws:
                size = int.from_bytes(raw[:8], "little")
                csize = int.from_bytes(raw[8:16], "little")
                inner = msgspec.msgpack.decode(dctx.decompress(raw[16:16 + csize], max_output_size=size))
                with self._lock:
                    self.messages.extend(inner["messages"])
                for m in inner["messages"]:
                    if m.get("type") == "GetRenderRequestMessage":   # as a browser does: a picture back
                        self._answer_render(m)
        except Exception:  # noqa: BLE001 - closed
            pass

    def _answer_render(self, request: dict) -> None:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (int(request["width"]), int(request["height"])), (200, 30, 30)).save(buf, "PNG")
        self.send(_messages.GetRenderResponseMessage(payload=buf.getvalue(), render_uuid=request["render_uuid"]))

    def of_type(self, name: str) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if m.get("type") == name]

    def wait_for(self, predicate, timeout: float = 20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = predicate()
            if got:
                return got
            time.sleep(0.02)
        raise TimeoutError("the server did not send what was expected")

    def download(self, timeout: float = 20.0) -> tuple[str, bytes]:
        """Wait for a whole file download; returns ``(file name, content)`` of the newest one."""
        def done():
            starts = self.of_type("FileTransferStartDownload")
            if not starts:
                return None
            start = starts[-1]
            parts = [p for p in self.of_type("FileTransferPart") if p["transfer_uuid"] == start["transfer_uuid"]]
            if len(parts) < start["part_count"]:
                return None
            parts.sort(key=lambda p: p["part_index"])
            content = b"".join(bytes(p["content"]) for p in parts)
            assert len(content) == start["size_bytes"]
            return start["filename"], content
        return self.wait_for(done, timeout)

    def close(self) -> None:
        self.ws.close()
        self._reader.join(5)

    def __enter__(self) -> "PageClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["PageClient"]
