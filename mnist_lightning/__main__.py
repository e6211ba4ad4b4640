import sys

if sys.argv[1:2] == ["serve"]:  # the web server runs on onnxruntime alone: skip the Lightning CLI and torch
    from mnist_lightning.serve import main

    sys.exit(main(sys.argv[2:]))
else:
    from mnist_lightning.cli import main_exit

    main_exit()
