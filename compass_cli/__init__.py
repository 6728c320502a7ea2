"""Commands that join the three packages: compass_model is used by compass_eval and
compass_train, which never import each other; what needs both of them lives here.
"""
