"""Reproduction (not collected by pytest): two ranks of `composer run` racing on the run folder.

    torchrun --nproc_per_node 2 tests/distributed/run_folder_race.py run GRAPH.yaml --out /tmp/race

Rank 0 pauses 2 s after `RunFolder.claim` created and locked the folder (before it writes
spec.yaml); rank 1 reaches its own check 1 s after rank 0's. Rank 1 then sees a non-empty folder
(`.lock`) without spec.yaml and exits "a non-empty folder that is not a composer run folder",
which is what a loaded machine does by chance (seen once in tests/distributed/test_distributed.py).
The pauses only widen the window; the check itself runs unchanged.
"""
import sys
import time

from composer.run.folder import RunFolder
from composer.tools import cli

original = RunFolder.claim


def widened(folder, main, *rest):
    if not main:
        time.sleep(1)
    lock = original(folder, main, *rest)
    if main:
        time.sleep(2)
    return lock


RunFolder.claim = widened
sys.exit(cli.main(sys.argv[1:]))
