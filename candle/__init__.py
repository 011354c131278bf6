"""CANDLE (Kim et al.): calibrate a pretrained FP teacher with multi-resolution inputs, distil a binary student."""
