"""All I/O with video, audio and disk: decoding, face tracking, alignment, records, datasets,
paper protocols and the synthetic data set. The detector packages depend on this one, never the
other way round."""
