"""Compass evaluation: the `compass` lm-eval model, task helpers and trajectory analysis.

Kept import-free: the start-up hook imports this package in every interpreter.
"""
