"""The one place for the constants both papers share. Import them; never repeat the literals."""

# Standardised media (FakeOut Sec. 3.3): every video is resampled to these before tracking.
FPS = 29
SAMPLE_RATE = 44_100

# At most this many seconds of a video are used (released FakeOut code).
MAX_SECONDS = 59

# Aligned face sizes: 224x224 for FakeOut (MMV backbone), 112x112 for the AdaFace identity encoder.
FACE_SIZE = 224
IDENTITY_FACE_SIZE = 112

# Whisper's front end works at 16 kHz.
WHISPER_SAMPLE_RATE = 16_000

# Labels everywhere: 0 real, 1 fake.
REAL, FAKE = 0, 1
