from mnist_lightning.cli import main_exit

main_exit()
