"""`python -m compass_train` / `accelerate launch -m compass_train run ...`."""

from compass_train.cli import main

raise SystemExit(main())
