"""Host-side optimisation and compilation: trained run -> device bundle (``edge-quantize``).

Modules, one job each:

* ``prune``            magnitude pruning (tfmot) incl. TimeDistributed / ConvLSTM2D / lrcn-edge parts
* ``qat``              quantization-aware training (prune-preserving), tfmot 0.8.1 workaround
* ``rewrite``          exact export-friendly rewrites (MaxPooling3D(1,2,2) -> per-frame pooling)
* ``representative``   calibration data from the training split (clips, frames, features)
* ``tflite_export``    float32 / float16 / dynamic / int8 TFLite (batch 1, fresh converter each time)
* ``onnx_export``      tf2onnx + onnxruntime verification against Keras
* ``edgetpu_analyzer`` op-by-op Edge TPU compatibility from the flatbuffer (no TF needed)
* ``edgetpu_compiler`` run edgetpu_compiler when present, parse its log
* ``tensorrt``         TensorRT engine builder for the Jetson (cache key, INT8 calibrator, trtexec)
* ``formats``          one ``export_<fmt>`` per export row of ``edge.catalog``
* ``parts``            a model's deployable parts (whole clip | encoder + head), chosen by the registry
* ``steps``            the pipeline as small steps over one ``Job`` (prune, export, verify, QAT, int8, ...)
* ``bundle_writer``    runs the steps, scores through ``edge.evaluation``, writes ``bundle.json``
* ``table``            the summary table; ``cli``: ``edge-quantize``

Nothing here is imported by ``edge/``; TensorFlow is imported inside functions only.
"""
