"""Inference without torch: onnxruntime, numpy and Pillow only (a test imports it with torch blocked).

``preprocess`` (people's images to MNIST-style pixels), ``digit_model`` (an exported ``mnist.onnx`` in onnxruntime),
``onnx_predict`` (the ``predict-onnx`` command) and ``serve`` (the draw-a-digit page and JSON API, ``[serve]`` extra).
"""
