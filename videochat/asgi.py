import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videochat.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402
from videochat import gctune, metrics, node  # noqa: E402
from videochat.origin import SameOriginValidator  # noqa: E402

# kill -USR1 drains this server: sockets move to other nodes, then it stops.
node.install_drain_signal()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin checked before anything else: the socket's own scheme, host and
        # port (videochat/origin.py); a foreign origin is refused at the handshake
        # (HTTP 403).
        # Sockets open and frames sent are counted at the edge (videochat/metrics.py).
        "websocket": metrics.SocketMetrics(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# Everything alive now lives as long as the process: kept out of the garbage
# collector's full collections, whose pauses were the chat latency tail
# (videochat/gctune.py; GC_FREEZE=0 turns it off).
gctune.tune()
