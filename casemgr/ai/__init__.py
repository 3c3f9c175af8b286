"""AI for casemgr: offline classification, summaries, suggestions and contract extraction.

Entry points: `casemgr.ai.providers.get_provider()` for the configured provider,
`casemgr.ai.service.run_capability()` to call it with recording and fallback.
"""
