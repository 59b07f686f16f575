"""Eviction policies for the bounded in-process cache tier and the offline simulator."""

from booking.cache.eviction.base import EvictionPolicy
from booking.cache.eviction.registry import ONLINE, POLICIES, make_policy

__all__ = ["ONLINE", "POLICIES", "EvictionPolicy", "make_policy"]
