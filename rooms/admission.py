"""Who may enter a room's call at ``hello`` beyond membership (bans, locks, lobby).

The consumer calls ``admit`` before adding the peer to presence. Raise an
``AppError`` subclass with a ``close_code`` attribute to refuse with a frame
and a close code.
"""

from typing import TYPE_CHECKING

from .protocol import Frame

if TYPE_CHECKING:
    from .consumers import RoomConsumer


async def admit(consumer: "RoomConsumer", frame: Frame) -> None:
    """Refuse entry by raising; membership was already checked at connect."""
    return None
