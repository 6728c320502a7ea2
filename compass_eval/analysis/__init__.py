"""Trajectory analysis of lm-eval results across training phases: the report and the gate."""
