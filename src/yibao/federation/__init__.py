"""A federation of nodes: one per province, each with its own people, catalogue and policy, and a hub between them.

Care away from home settles directly: the node where care happens classifies the fee lines with its catalogue, the
hub routes the claim (signed, idempotent by message key) to the insured person's node, which applies its policy,
totals and accounts. Events between nodes (confirmations, clearing) travel over NATS JetStream from an outbox.
docs/federation.md writes the protocol down.
"""
