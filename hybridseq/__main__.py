"""``python -m hybridseq``, as torchrun starts it: ``torchrun --nproc-per-node 2 -m hybridseq
train CONFIG``."""

from hybridseq.cli import main

main()
