"""All I/O with video, audio and disk: decoding, face tracking, alignment, records, datasets,
paper protocols and the synthetic data set. The detector packages depend on this one, never the
other way round."""

import os as _os

# TensorFlow (tf.data, TFRecords) and MediaPipe print C++ INFO lines at import unless told
# otherwise; every package of the project imports `data` first. Users can still override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("GLOG_minloglevel", "2")
