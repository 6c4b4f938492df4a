"""The socket patterns of RFC 28-31 and the draft types of RFC 47-49, one module per socket type."""

from ..socket import Socket
from ..socket_type import SocketType
from .client import Client
from .dealer import Dealer
from .dish import Dish
from .gather import Gather
from .pair import Pair
from .pub import Pub
from .pull import Pull
from .push import Push
from .radio import Radio
from .rep import Rep
from .req import Req
from .router import Router
from .scatter import Scatter
from .server import Server
from .sub import Sub
from .xpub import XPub
from .xsub import XSub

_CLASSIC = (Req, Rep, Dealer, Router, Pub, Sub, XPub, XSub, Push, Pull, Pair)
_DRAFT = (Client, Server, Radio, Dish, Scatter, Gather)
SOCKET_CLASSES: dict[SocketType, type[Socket]] = {cls.type: cls for cls in (*_CLASSIC, *_DRAFT)}

__all__ = [
    "SOCKET_CLASSES",
    "Client",
    "Dealer",
    "Dish",
    "Gather",
    "Pair",
    "Pub",
    "Pull",
    "Push",
    "Radio",
    "Rep",
    "Req",
    "Router",
    "Scatter",
    "Server",
    "Sub",
    "XPub",
    "XSub",
]
