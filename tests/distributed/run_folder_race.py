"""Reproduction (not collected by pytest): two ranks of `composer run` racing on the run folder.

    torchrun --nproc_per_node 2 tests/distributed/run_folder_race.py run GRAPH.yaml --out /tmp/race

Rank 0 pauses 2 s after `train.run_folder` created and locked the folder (before it writes
spec.yaml); rank 1 reaches its own check 1 s after rank 0's. Rank 1 then sees a non-empty folder
(`.lock`) without spec.yaml and exits "a non-empty folder that is not a composer run folder",
which is what a loaded machine does by chance (seen once in tests/distributed/test_distributed.py).
The pauses only widen the window; the check itself runs unchanged.
"""
import sys
import time

from composer.tools import cli
from composer.run import trainer as train

original = train.run_folder


def widened(out, main, *rest):
    if not main:
        time.sleep(1)
    lock = original(out, main, *rest)
    if main:
        time.sleep(2)
    return lock


train.run_folder = widened
sys.exit(cli.main(sys.argv[1:]))
