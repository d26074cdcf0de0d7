"""The curated marts: plain functions from silver (and gold) frames to the tables of the DuckDB marts file."""
