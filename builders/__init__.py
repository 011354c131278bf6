"""Dataset builders: LT profile, source readers, the Parquet split writer, card, manifest and Hub publishing."""
