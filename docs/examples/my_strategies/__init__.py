"""Strategies of the walkthrough: on sys.path as `my_strategies.<module>` when you run docs/examples/*.py."""
