"""Tenant rules: EventBridge-pattern matching compiled for speed (``matcher``), the rule document
model, rule packs, and the stateful layer (thresholds, suppression) in ``state``."""
