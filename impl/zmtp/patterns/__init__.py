"""The socket patterns of RFC 28-31, one module per socket type."""

from ..socket import Socket
from ..socket_type import SocketType
from .dealer import Dealer
from .pair import Pair
from .pub import Pub
from .pull import Pull
from .push import Push
from .rep import Rep
from .req import Req
from .router import Router
from .sub import Sub
from .xpub import XPub
from .xsub import XSub

SOCKET_CLASSES: dict[SocketType, type[Socket]] = {
    cls.type: cls for cls in (Req, Rep, Dealer, Router, Pub, Sub, XPub, XSub, Push, Pull, Pair)
}

__all__ = ["SOCKET_CLASSES", "Dealer", "Pair", "Pub", "Pull", "Push", "Rep", "Req", "Router", "Sub", "XPub", "XSub"]
