"""MetaStudio voice-training API: request signing, the async client, its models and errors."""

from bot.metastudio.signing import AKSKAuth

__all__ = ["AKSKAuth"]
