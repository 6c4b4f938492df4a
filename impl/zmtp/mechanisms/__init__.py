"""Security mechanisms: NULL here; PLAIN and CURVE each in a module of their own."""

from .base import Mechanism
from .null import NullMechanism

__all__ = ["Mechanism", "NullMechanism"]
