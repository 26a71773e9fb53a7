"""gwlog: AgentGateway access logs → per-user, per-team LLM usage, cost and latency metrics."""

__version__ = "0.1.0"
