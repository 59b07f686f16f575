"""Eviction policies for the bounded in-process cache tier and the offline simulator."""

from eviction.base import EvictionPolicy, Policy
from eviction.registry import ONLINE, POLICIES, make_policy

__all__ = ["ONLINE", "POLICIES", "EvictionPolicy", "Policy", "make_policy"]
