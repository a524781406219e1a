"""What most Django projects ship: a minimal Channels consumer that group_sends.

No persistence and no auth; the channel layer is channels_redis on REDIS_URL.
Serve with: daphne -p PORT bench.chat_channels_min:application
"""

import os
from datetime import UTC, datetime

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="bench-only",  # noqa: S106
    INSTALLED_APPS=["channels"],
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "capacity": 1500, "expiry": 30},
        }
    },
)
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"room.{self.scope['url_route']['kwargs']['room']}"
        self.seq = 0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if content.get("type") == "hello":
            await self.send_json({"type": "welcome"})
            return
        if content.get("type") != "chat.send":
            return
        self.seq += 1  # per socket: there is no shared record to number from
        await self.send_json({"type": "chat.ack", "client_id": content["client_id"], "seq": 0})
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "chat.message",
                "frame": {
                    "type": "chat.message",
                    "seq": self.seq,
                    "client_id": content["client_id"],
                    "author_id": 0,
                    "author_name": "bench",
                    "body": content["body"],
                    "created_at": datetime.now(UTC).isoformat(),
                },
            },
        )

    async def chat_message(self, event) -> None:
        await self.send_json(event["frame"])


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/rooms/<slug:room>/", ChatConsumer.as_asgi())])}
)
