import sys

from compass_train.synth.cli import main

sys.exit(main(prog="python -m compass_train.synth"))
