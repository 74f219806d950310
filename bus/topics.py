"""AMQP-style topic patterns, so ``LocalBus`` routes events exactly like RabbitMQ's topic exchange."""

from __future__ import annotations


def topic_matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` matches ``pattern``: '*' is exactly one word, '#' is zero or more words."""
    return _match(tuple(_words(pattern)), tuple(_words(topic)))


def _words(text: str) -> list[str]:
    return text.split(".") if text else []


def _match(pattern: tuple[str, ...], topic: tuple[str, ...]) -> bool:
    if not pattern:
        return not topic
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, topic[i:]) for i in range(len(topic) + 1))
    if not topic:
        return False
    return head in ("*", topic[0]) and _match(rest, topic[1:])
