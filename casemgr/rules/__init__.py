"""Routing rules: YAML policy compiled into durable-rules, behind evaluate(facts) -> Decision."""
