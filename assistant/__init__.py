"""The Kommandant: one conversation turn, start to finish (turn, policy, events, runtime, the fallback
protocol and the LLM fallback, the spoken entrance); its front doors live in ``web/`` and ``cli/``."""
