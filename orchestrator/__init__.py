"""snail-trail: progressive delivery for Amazon ECS."""

__version__ = "0.1.0"
