"""``python -m mnist_lightning``: see :mod:`mnist_lightning.commands`."""

from mnist_lightning.commands import main_exit

main_exit()
