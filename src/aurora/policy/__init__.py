"""vault-law: the treaty's policy engine (pure decisions) and its state."""

from aurora.policy.engine import Decision, Usage, decide
from aurora.policy.state import PolicyState, Reservation

__all__ = ["Decision", "PolicyState", "Reservation", "Usage", "decide"]
